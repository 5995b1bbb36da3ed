//! Text clean-up shared by every parser: HTML to plain text, entity decoding,
//! whitespace, length caps, prices, slugs and title case.

/// Collapses every run of whitespace (including NBSP) to one space and trims.
pub fn collapse_whitespace(input: &str) -> String {
    // Most titles, values and lines already are: a byte scan instead of splitting by chars.
    if is_collapsed(input) {
        return input.to_string();
    }
    let mut out = String::with_capacity(input.len());
    for word in input.split(|c: char| c.is_whitespace() || c == '\u{a0}') {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether `collapse_whitespace` would return `input` unchanged: words
/// separated by single spaces, no other whitespace, none at either end.
fn is_collapsed(input: &str) -> bool {
    let bytes = input.as_bytes();
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    let mut after_space = false;
    let mut ascii = true;
    for &byte in bytes {
        match byte {
            b' ' if after_space => return false,
            b' ' => after_space = true,
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => return false,
            _ => {
                after_space = false;
                ascii &= byte.is_ascii();
            }
        }
    }
    ascii || !input.chars().any(|c| c != ' ' && (c.is_whitespace() || c == '\u{a0}'))
}

/// Trimmed, whitespace-collapsed, `None` when empty.
pub fn clean(input: Option<&str>) -> Option<String> {
    input.map(collapse_whitespace).filter(|text| !text.is_empty())
}

/// Cuts `text` to at most `max_chars` characters, preferring a word boundary,
/// and marks the cut with an ellipsis. Returns the text unchanged when short enough.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    let Some((byte_end, _)) = text.char_indices().nth(max_chars) else {
        return text.to_string();
    };
    // Leave room for the ellipsis, then back off to the last space if it is close.
    let hard_end = text[..byte_end].char_indices().last().map_or(0, |(index, _)| index);
    let cut = &text[..hard_end];
    let cut = match cut.rfind(' ') {
        Some(space) if cut.len() - space < 80 => &cut[..space],
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

pub fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// Tags whose content is never visible text.
const INVISIBLE_ELEMENTS: [&str; 4] = ["script", "style", "template", "noscript"];
/// Tags that end a line of text when they open or close.
const BLOCK_ELEMENTS: [&str; 20] = [
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "blockquote",
    "hr",
    "dt",
    "dd",
];

/// Reduces an HTML fragment to plain text: tags removed, block elements become
/// line breaks, entities decoded, whitespace collapsed within lines, empty lines dropped.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            // A lone '<' is text, not markup.
            text.push('<');
            rest = after;
            continue;
        };
        let tag = &after[..close];
        rest = &after[close + 1..];
        let name = tag_name(tag);
        if INVISIBLE_ELEMENTS.contains(&name.as_str()) && !tag.starts_with('/') {
            rest = skip_past_closing_tag(rest, &name);
        } else if BLOCK_ELEMENTS.contains(&name.as_str()) {
            text.push('\n');
        }
    }
    text.push_str(rest);
    let decoded = decode_entities(&text);
    decoded.lines().map(collapse_whitespace).filter(|line| !line.is_empty()).collect::<Vec<_>>().join("\n")
}

fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn skip_past_closing_tag<'a>(rest: &'a str, name: &str) -> &'a str {
    let closing = format!("</{name}");
    match find_ascii_case_insensitive(rest, &closing) {
        Some(start) => match rest[start..].find('>') {
            Some(end) => &rest[start + end + 1..],
            None => "",
        },
        None => "",
    }
}

/// Byte index of the first case-insensitive occurrence of an ASCII `needle`.
pub fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return Some(0);
    }
    haystack.as_bytes().windows(needle.len()).position(|window| window.eq_ignore_ascii_case(needle))
}

/// Decodes HTML character references: numeric ones and the named ones that
/// appear in product copy. Unknown names are left as written.
pub fn decode_entities(input: &str) -> String {
    if !input.contains('&') {
        return input.to_string();
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|&end| end <= 10);
        match end.and_then(|end| decode_entity(&after[..end]).map(|c| (end, c))) {
            Some((end, decoded)) => {
                out.push(decoded);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    let decoded = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "bull" => '•',
        "middot" => '·',
        "times" => '×',
        "deg" => '°',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "pound" => '£',
        "euro" => '€',
        "cent" => '¢',
        "yen" => '¥',
        "eacute" => 'é',
        "egrave" => 'è',
        "ecirc" => 'ê',
        "aacute" => 'á',
        "agrave" => 'à',
        "acirc" => 'â',
        "ccedil" => 'ç',
        "iacute" => 'í',
        "oacute" => 'ó',
        "uacute" => 'ú',
        "ntilde" => 'ñ',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "auml" => 'ä',
        "szlig" => 'ß',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        _ => return None,
    };
    Some(decoded)
}

/// Why a price string was refused; the message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceError {
    Negative(String),
    NotANumber(String),
    Implausible(String),
}

impl std::fmt::Display for PriceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriceError::Negative(raw) => write!(f, "negative price {raw:?}"),
            PriceError::NotANumber(raw) => write!(f, "price {raw:?} is not a number"),
            PriceError::Implausible(raw) => write!(f, "price {raw:?} is implausibly large"),
        }
    }
}

/// Prices above this are data errors (a SKU or a barcode pasted into the price column).
const MAX_PRICE: f64 = 1e9;

/// A price with its currency when the text names one ("12.99 USD", "USD 12.99", "£12.99").
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPrice {
    pub amount: f64,
    pub currency: Option<String>,
}

/// Parses a merchant price. Empty input is `Ok(None)`. Thousands separators are
/// accepted; a lone comma followed by exactly two digits is a decimal comma.
pub fn parse_price(raw: &str) -> Result<Option<ParsedPrice>, PriceError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let (number_text, currency) = split_currency(trimmed);
    let number_text = number_text.trim();
    let negative = number_text.starts_with('-');
    let digits = number_text.trim_start_matches(['-', '+']).trim();
    let normalized = normalize_decimal(digits).ok_or_else(|| PriceError::NotANumber(raw.to_string()))?;
    let amount: f64 = normalized.parse().map_err(|_| PriceError::NotANumber(raw.to_string()))?;
    if !amount.is_finite() {
        return Err(PriceError::NotANumber(raw.to_string()));
    }
    if negative && amount != 0.0 {
        return Err(PriceError::Negative(raw.to_string()));
    }
    if amount > MAX_PRICE {
        return Err(PriceError::Implausible(raw.to_string()));
    }
    Ok(Some(ParsedPrice { amount, currency }))
}

/// Checks a price that arrived as a JSON number.
pub fn check_price_number(value: f64) -> Result<f64, PriceError> {
    if !value.is_finite() {
        return Err(PriceError::NotANumber(value.to_string()));
    }
    if value < 0.0 {
        return Err(PriceError::Negative(value.to_string()));
    }
    if value > MAX_PRICE {
        return Err(PriceError::Implausible(value.to_string()));
    }
    Ok(value)
}

fn split_currency(text: &str) -> (String, Option<String>) {
    let symbol_currency = [('$', "USD"), ('£', "GBP"), ('€', "EUR"), ('₹', "INR"), ('¥', "JPY")];
    let mut currency = None;
    let mut number = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if word.len() == 3 && word.chars().all(|c| c.is_ascii_alphabetic()) {
            currency = Some(word.to_ascii_uppercase());
            continue;
        }
        number.push_str(word);
    }
    let mut stripped = String::with_capacity(number.len());
    for c in number.chars() {
        match symbol_currency.iter().find(|(symbol, _)| *symbol == c) {
            Some((_, code)) => currency = currency.or_else(|| Some((*code).to_string())),
            None => stripped.push(c),
        }
    }
    // "Rs." and "Rs" prefixes are common in Indian feeds.
    let stripped =
        stripped.strip_prefix("Rs.").or_else(|| stripped.strip_prefix("Rs")).unwrap_or(&stripped).to_string();
    (stripped, currency)
}

/// Turns "1,299.00", "1.299,00", "12,99" into a plain decimal; `None` if not a number shape.
fn normalize_decimal(digits: &str) -> Option<String> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return None;
    }
    let last_dot = digits.rfind('.');
    let last_comma = digits.rfind(',');
    let decimal_separator = match (last_dot, last_comma) {
        (Some(dot), Some(comma)) => Some(if dot > comma { '.' } else { ',' }),
        (Some(_), None) => Some('.'),
        (None, Some(comma)) if digits.len() - comma - 1 == 2 && digits.matches(',').count() == 1 => Some(','),
        _ => None,
    };
    let mut out = String::with_capacity(digits.len());
    for c in digits.chars() {
        match c {
            '0'..='9' => out.push(c),
            separator if Some(separator) == decimal_separator => out.push('.'),
            _ => {}
        }
    }
    (out.matches('.').count() <= 1 && out.chars().any(|c| c.is_ascii_digit())).then_some(out)
}

/// "navy BLUE" → "Navy Blue"; hyphenated parts are capitalized too ("off-white" → "Off-White").
pub fn title_case(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut at_word_start = true;
    for c in input.chars() {
        if c.is_alphanumeric() {
            if at_word_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            at_word_start = false;
        } else {
            out.push(c);
            at_word_start = c.is_whitespace() || c == '-' || c == '/';
        }
    }
    out
}

/// URL-safe lowercase slug: "Marks & Spencer" → "marks-and-spencer", "Levi's" → "levis".
pub fn slugify(input: &str) -> String {
    let mut slug = String::with_capacity(input.len());
    let mut pending_dash = false;
    for c in input.replace('&', " and ").chars() {
        if c == '\'' || c == '’' {
            continue;
        }
        let folded = fold_accent(c);
        if folded.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(folded.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    slug
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        other => other,
    }
}

/// Lowercase words of a text, split on anything that is not a letter, digit, or an inner hyphen/apostrophe.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
        .map(|word| word.trim_matches(['-', '\'']).to_lowercase())
        .filter(|word| !word.is_empty())
        .collect()
}

/// Splits a breadcrumb-like path ("A > B > C", "A/B/C" is not split: slashes appear in names).
pub fn split_path(path: &str) -> Vec<String> {
    path.split(['>', '›', '»']).map(collapse_whitespace).filter(|part| !part.is_empty()).collect()
}

/// Splits a list-valued field on commas (tags, additional images).
pub fn split_list(text: &str, separator: char) -> Vec<String> {
    text.split(separator).map(collapse_whitespace).filter(|item| !item.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapsing_skips_text_that_needs_none_and_is_unchanged_by_it() {
        let by_words = |input: &str| {
            input
                .split(|c: char| c.is_whitespace() || c == '\u{a0}')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        for input in [
            "",
            " ",
            "Navy Blue Shirt",
            "Navy  Blue",
            " Navy",
            "Navy ",
            "a\tb",
            "a\nb",
            "a\u{b}b",
            "a\u{c}b",
            "a\rb",
            "Café Crème",
            "Café\u{a0}Crème",
            "a\u{2003}b",
            "a\u{3000}b",
            "a \u{85}b",
            "a\u{1f}b",
            "日本 語",
        ] {
            assert_eq!(collapse_whitespace(input), by_words(input), "{input:?}");
            assert_eq!(is_collapsed(input), by_words(input) == input, "{input:?}");
        }
    }

    #[test]
    fn html_becomes_plain_lines() {
        let html =
            "<p>Find your calm with the <strong>BlissLoom</strong> &amp; relax.</p>\n<ul><li>Soft&nbsp;fabric</li>\
                    <li>Gentle &#8211; even</li></ul><script>var x = '<p>';</script><p>&#x2B50; Done</p>";
        assert_eq!(
            html_to_text(html),
            "Find your calm with the BlissLoom & relax.\nSoft fabric\nGentle – even\n⭐ Done"
        );
    }

    #[test]
    fn html_with_stray_brackets_keeps_text() {
        assert_eq!(html_to_text("a < b and c"), "a < b and c");
        assert_eq!(html_to_text("5 &lt; 6 &unknown; &"), "5 < 6 &unknown; &");
    }

    #[test]
    fn prices_in_feed_spellings() {
        let amount = |raw: &str| parse_price(raw).unwrap().unwrap().amount;
        assert_eq!(amount("12.99"), 12.99);
        assert_eq!(amount("12.99 USD"), 12.99);
        assert_eq!(amount("USD 1,299.50"), 1299.5);
        assert_eq!(amount("1.299,50 EUR"), 1299.5);
        assert_eq!(amount("12,99"), 12.99);
        assert_eq!(amount("£86.69"), 86.69);
        assert_eq!(amount("Rs. 899"), 899.0);
        assert_eq!(amount("11745"), 11745.0);
        assert_eq!(parse_price("12.99 USD").unwrap().unwrap().currency.as_deref(), Some("USD"));
        assert_eq!(parse_price("£5").unwrap().unwrap().currency.as_deref(), Some("GBP"));
        assert_eq!(parse_price("  ").unwrap(), None);
    }

    #[test]
    fn bad_prices_are_named() {
        assert_eq!(parse_price("-3.00").unwrap_err().to_string(), "negative price \"-3.00\"");
        assert_eq!(parse_price("abc").unwrap_err().to_string(), "price \"abc\" is not a number");
        assert_eq!(parse_price("1.2.3").unwrap_err(), PriceError::NotANumber("1.2.3".into()));
        assert_eq!(parse_price("NaN").unwrap_err(), PriceError::NotANumber("NaN".into()));
        assert!(matches!(parse_price("99999999999"), Err(PriceError::Implausible(_))));
        assert!(check_price_number(-1.0).is_err());
        assert_eq!(parse_price("-0.00").unwrap().unwrap().amount, 0.0);
    }

    #[test]
    fn truncation_respects_chars_and_words() {
        assert_eq!(truncate_chars("short", 10), "short");
        let cut = truncate_chars("one two three four", 10);
        assert_eq!(cut, "one two…");
        assert!(char_count(&cut) <= 10);
        let unicode = "é".repeat(30);
        assert_eq!(char_count(&truncate_chars(&unicode, 10)), 10);
    }

    #[test]
    fn slugs_and_title_case() {
        assert_eq!(slugify("Marks & Spencer"), "marks-and-spencer");
        assert_eq!(slugify("Levi's"), "levis");
        assert_eq!(slugify("U.S. Polo Assn. Kids"), "u-s-polo-assn-kids");
        assert_eq!(slugify("  Crème Brûlée "), "creme-brulee");
        assert_eq!(title_case("navy BLUE"), "Navy Blue");
        assert_eq!(title_case("off-white"), "Off-White");
    }

    #[test]
    fn paths_and_lists() {
        assert_eq!(
            split_path("Apparel & Accessories > Clothing >  Shirts"),
            ["Apparel & Accessories", "Clothing", "Shirts"]
        );
        assert_eq!(split_list("a, b,,c ", ','), ["a", "b", "c"]);
        assert_eq!(collapse_whitespace(" a\u{a0} b\n"), "a b");
    }
}
