//! Durations on the command line: `90s`, `30m`, `24h`, `7d`.

use crate::cli_error::{CliError, CliResult, ExitClass};

/// `30m`, `6h`, `1d`, `90s` → seconds. `what` names the option in the error.
pub fn parse_seconds(text: &str, what: &str) -> CliResult<u64> {
    let invalid = || CliError::new(ExitClass::Invalid, format!("invalid {what} {text:?}: use e.g. 30m, 6h or 7d"));
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    number.checked_mul(unit_seconds).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn units_and_refusals() {
        assert_eq!(parse_seconds("90s", "x").unwrap(), 90);
        assert_eq!(parse_seconds("30m", "x").unwrap(), 1_800);
        assert_eq!(parse_seconds(" 24h ", "x").unwrap(), 86_400);
        assert_eq!(parse_seconds("7d", "x").unwrap(), 604_800);
        for bad in ["", "24", "h", "1.5h", "-1h", "2w", "99999999999999999999d", "18446744073709551615d"] {
            let error = parse_seconds(bad, "--every").unwrap_err();
            assert!(error.message.contains("invalid --every"), "{bad:?}: {}", error.message);
        }
    }
}
