//! Durations as people write them on a command line.

/// A duration as the command-line tool and the example receivers read it: `90s`, `30m`,
/// `12h`, `7d`, `2w` or a sum such as `1d12h`.
///
/// ```
/// use std::time::Duration;
/// use printone_webhooks::reconcile::parse_duration;
///
/// assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(36 * 3600)));
/// assert!(parse_duration("ten minutes").is_err());
/// ```
///
/// # Errors
///
/// A message naming the text, for anything else (an empty text, an unknown unit, a number
/// without a unit, an overflow).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 90s, 30m, 12h, 7d or 1d12h");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(invalid()),
        };
        let amount: u64 = digits.parse().map_err(|_| invalid())?;
        total = amount
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(invalid());
    }
    Ok(std::time::Duration::from_secs(total))
}
