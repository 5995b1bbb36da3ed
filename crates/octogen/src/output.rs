//! Printing results: tables fitted to the terminal for people, JSON for scripts.

use std::io::Write;

use serde_json::Value;

/// Writes one line to standard output. When the reader has gone away
/// (`octogen … | head -1`), the command exits quietly with status 0, as
/// `head`'s caller expects, instead of panicking like `std::println!`.
/// `main.rs` routes every `println!` of this crate here.
pub fn print_line(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n"));
    match written {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("error: cannot write to standard output: {error}");
            std::process::exit(1);
        }
    }
}

/// Tables are fitted to this width when neither `COLUMNS` nor a terminal says
/// (output to a file or pager: wider than a classic terminal, still readable).
const DEFAULT_WIDTH: usize = 120;
/// Columns are never narrowed below this (or their widest cell, if narrower).
const MIN_COLUMN_WIDTH: usize = 4;
/// A column whose cells are all single words this short (ids, keys, counts,
/// times, statuses) is kept whole while narrowing others can make the table
/// fit: such values are copied, not read, and a cut one is useless.
const WHOLE_WORD_MAX: usize = 40;
const GAP: &str = "  ";

/// The width tables are fitted to: `COLUMNS` when set, else the terminal's,
/// else a default (output to a pipe or file is fitted too; `--json` has
/// every value in full).
pub fn table_width() -> usize {
    let from_env = std::env::var("COLUMNS").ok().and_then(|columns| columns.trim().parse::<usize>().ok());
    from_env
        .filter(|width| *width > 0)
        .or_else(|| {
            let terminal = console::Term::stdout();
            terminal.is_term().then(|| terminal.size_checked()).flatten().map(|(_, columns)| usize::from(columns))
        })
        .unwrap_or(DEFAULT_WIDTH)
}

/// Prints rows under headers, columns padded to their widest cell and fitted
/// to [`table_width`]: text columns (titles, names, URLs) are narrowed first,
/// widest first, and cells that do not fit end in "…".
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    for line in render_table(headers, rows, table_width()) {
        println!("{line}");
    }
}

/// The lines of a table fitted to `width` display columns.
pub fn render_table(headers: &[&str], rows: &[Vec<String>], width: usize) -> Vec<String> {
    let mut natural: Vec<usize> = headers.iter().map(|header| console::measure_text_width(header)).collect();
    for row in rows {
        for (column, cell) in natural.iter_mut().zip(row) {
            *column = (*column).max(console::measure_text_width(cell));
        }
    }
    let whole: Vec<bool> = (0..natural.len())
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .all(|cell| !cell.contains(char::is_whitespace) && console::measure_text_width(cell) <= WHOLE_WORD_MAX)
        })
        .collect();
    let budget = width.saturating_sub(GAP.len() * natural.len().saturating_sub(1));
    let widths = fit_widths_keeping(&natural, &whole, budget);
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| {
                let cell = console::truncate_str(cell, *width, "…");
                console::pad_str(&cell, *width, console::Alignment::Left, None).into_owned()
            })
            .collect();
        padded.join(GAP).trim_end().to_string()
    };
    let mut lines = vec![line(&mut headers.iter().copied())];
    lines.extend(rows.iter().map(|row| line(&mut row.iter().map(String::as_str))));
    lines
}

/// Column widths that fit `budget` (the width without the gaps): the natural
/// widths when they fit; otherwise every column wider than a common cap is cut
/// to it, the cap chosen as large as fits (narrow columns keep their width).
pub fn fit_widths(natural: &[usize], budget: usize) -> Vec<usize> {
    if natural.iter().sum::<usize>() <= budget {
        return natural.to_vec();
    }
    let capped = |cap: usize| -> Vec<usize> {
        natural.iter().map(|&width| width.min(cap.max(MIN_COLUMN_WIDTH.min(width)))).collect()
    };
    let widest = natural.iter().copied().max().unwrap_or(0);
    let cap = (0..=widest).rev().find(|&cap| capped(cap).iter().sum::<usize>() <= budget).unwrap_or(0);
    let mut widths = capped(cap);
    // Hand the remainder, a column at a time, to the columns that were cut.
    let mut spare = budget.saturating_sub(widths.iter().sum());
    for (width, &full) in widths.iter_mut().zip(natural) {
        if spare == 0 {
            break;
        }
        if *width < full {
            *width += 1;
            spare -= 1;
        }
    }
    widths
}

/// Like [`fit_widths`], but the columns marked `whole` always keep their
/// natural width: a cut id or time cannot be copied back into a command, so
/// when they alone do not fit, the table is wider than the terminal rather
/// than useless (the other columns still give way down to their minimum).
pub fn fit_widths_keeping(natural: &[usize], whole: &[bool], budget: usize) -> Vec<usize> {
    let kept: usize = natural.iter().zip(whole).filter(|(_, whole)| **whole).map(|(width, _)| width).sum();
    let flexible: Vec<usize> =
        natural.iter().zip(whole).filter(|(_, whole)| !**whole).map(|(width, _)| *width).collect();
    let mut fitted = fit_widths(&flexible, budget.saturating_sub(kept)).into_iter();
    natural
        .iter()
        .zip(whole)
        .map(|(width, whole)| if *whole { *width } else { fitted.next().unwrap_or(*width) })
        .collect()
}

pub fn json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A JSON field as display text: strings bare, null as "-".
pub fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_that_fit_keep_every_cell_whole() {
        let rows = vec![vec!["northwind".to_string(), "24".to_string()]];
        assert_eq!(render_table(&["KEY", "PRODUCTS"], &rows, 80), ["KEY        PRODUCTS", "northwind  24"]);
    }

    #[test]
    fn wide_tables_narrow_their_widest_columns_with_an_ellipsis() {
        let title = "Trail Fleece Hoodie with a very long marketing title that goes on".to_string();
        let url = "https://northwind.example/products/trail-fleece-hoodie-with-a-long-handle".to_string();
        let rows = vec![vec![title, "64.00 USD".to_string(), url]];
        let lines = render_table(&["TITLE", "PRICE", "URL"], &rows, 60);
        for line in &lines {
            assert!(console::measure_text_width(line) <= 60, "{line:?} is wider than 60");
        }
        assert!(lines[1].contains("64.00 USD"), "narrow columns keep their width: {lines:?}");
        assert_eq!(lines[1].matches('…').count(), 2, "both long cells are cut: {lines:?}");
        assert!(lines[1].starts_with("Trail Fleece"), "{lines:?}");
    }

    #[test]
    fn ids_are_kept_whole_while_text_columns_can_give_way() {
        let id = "0f8fad5bd9cb469fa16570867728950e".to_string();
        let rows = vec![vec![id.clone(), "A name long enough to need cutting at this width".to_string()]];
        let lines = render_table(&["ID", "NAME"], &rows, 50);
        assert!(lines[1].starts_with(&id), "{lines:?}");
        assert!(lines[1].ends_with('…') && console::measure_text_width(&lines[1]) <= 50, "{lines:?}");
        // When even the ids do not fit, the ids stay whole and the rest gives way to its minimum.
        let narrow = render_table(&["ID", "NAME"], &rows, 20);
        assert!(narrow[1].starts_with(&id) && narrow[1].ends_with('…'), "{narrow:?}");
    }

    #[test]
    fn fitting_uses_the_whole_budget_and_never_less_than_a_minimum() {
        assert_eq!(fit_widths(&[10, 5, 40], 100), [10, 5, 40]);
        let widths = fit_widths(&[30, 5, 40], 50);
        assert_eq!(widths.iter().sum::<usize>(), 50);
        assert_eq!(widths[1], 5);
        assert_eq!(fit_widths(&[30, 2, 40], 3), [4, 2, 4], "columns keep a minimum even when nothing fits");
    }
}
