//! Money is integer cents everywhere; this is where it meets text.

/// An amount as a page shows it, written straight into the page (no string per price).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(pub i64);

impl std::fmt::Display for Price {
    /// 1234 → "$12.34".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let c = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", c / 100, c % 100)
    }
}

/// 1234 → "$12.34".
pub fn format(cents: i64) -> String {
    Price(cents).to_string()
}

/// "12", "12.5", "12.50", "$12.50" → 1250. At most two decimals, at most $100,000.00, above zero.
pub fn parse(text: &str) -> Option<i64> {
    let t = text.trim().trim_start_matches('$').replace(',', "");
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty()
        || whole.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = whole.parse::<i64>().ok()? * 100 + format!("{frac:0<2}").parse::<i64>().ok()?;
    (cents > 0 && cents <= 10_000_000).then_some(cents)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        assert_eq!(super::parse("12.5"), Some(1250));
        assert_eq!(super::parse("$1,000"), Some(100_000));
        assert_eq!(super::parse("0.01"), Some(1));
        for bad in ["", "-1", "0", "1.234", "abc", "1e3", "99999999"] {
            assert_eq!(super::parse(bad), None, "{bad}");
        }
        assert_eq!(super::format(1250), "$12.50");
        assert_eq!(super::format(5), "$0.05");
    }
}
