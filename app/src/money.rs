//! Money is integer cents everywhere; this is where it meets text.

/// An amount as a page shows it, written straight into the page (no string per price).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(pub i64);

impl std::fmt::Display for Price {
    /// 123456 → "$1,234.56".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let c = self.0.unsigned_abs();
        write!(f, "{sign}$")?;
        write_grouped(f, c / 100)?;
        write!(f, ".{:02}", c % 100)
    }
}

/// 1234567 → "1,234,567", written where it goes (a catalog page writes 50 prices: no string each).
fn write_grouped(out: &mut impl std::fmt::Write, n: u64) -> std::fmt::Result {
    if n < 1000 {
        return write!(out, "{n}");
    }
    write_grouped(out, n / 1000)?;
    write!(out, ",{:03}", n % 1000)
}

/// 123456 → "$1,234.56".
pub fn format(cents: i64) -> String {
    Price(cents).to_string()
}

/// The largest price a listing takes: $100,000.00.
pub const MAX_CENTS: i64 = 10_000_000;

/// Reads a typed price as people write it: "12.50", "12,50", "$12.50", "1,250.50", "1.250,50",
/// "1 250,50". The separator that comes last with one or two digits after it is the decimal one;
/// others group thousands by three. What could be read two ways ("1,250": a thousand, or 1.25 with
/// a trailing zero) is refused, and every refusal says how the text was read.
pub fn read(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('$')
        .or_else(|| t.strip_suffix('$'))
        .unwrap_or(t)
        .trim();
    if t.is_empty() {
        return Err("Enter a price such as 12.50.".into());
    }
    if t.starts_with('-') {
        return Err(format!("“{t}” is below zero: a price is above zero."));
    }
    // Spaces (also the no-break ones some keyboards type) and apostrophes only ever group thousands.
    let grouped: String = t
        .chars()
        .map(|c| match c {
            ' ' | '\u{a0}' | '\u{202f}' | '\'' => '_',
            c => c,
        })
        .collect();
    if let Some(bad) = grouped
        .chars()
        .find(|c| !c.is_ascii_digit() && !matches!(c, '.' | ',' | '_'))
    {
        return Err(format!(
            "“{t}” is not a price (“{bad}”): use digits, with a point or a comma before the cents, such as 12.50 or 12,50."
        ));
    }
    let last_sep = grouped.rfind(['.', ',']);
    let (whole, cents) = match last_sep {
        None => (grouped.as_str(), ""),
        Some(i) => {
            let sep = grouped.as_bytes()[i] as char;
            let after = &grouped[i + 1..];
            let same_again = grouped[..i].contains(sep);
            let other = if sep == '.' { ',' } else { '.' };
            let other_before = grouped[..i].contains(other);
            if same_again || (after.len() == 3 && !other_before) {
                if after.len() == 3 && !same_again && !other_before {
                    let whole_part = grouped[..i].replace('_', "");
                    let as_thousands = format!("{whole_part}{after}");
                    return Err(format!(
                        "“{t}” could be read two ways: {} or {whole_part}.{after}. Write {as_thousands} for the first, or two digits after the decimal separator for the second ({whole_part}.{}).",
                        format_plain(&as_thousands),
                        &after[..2],
                    ));
                }
                // Only thousands separators: "1,250,000" or "1.250.000".
                (grouped.as_str(), "")
            } else {
                (&grouped[..i], after)
            }
        }
    };
    if cents.len() > 2 || !cents.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "“{t}” was read with {} after the decimal separator: a price has at most two decimals (cents).",
            cents.len()
        ));
    }
    let digits = thousands(whole).ok_or_else(|| {
        format!(
            "“{t}” has a thousands separator out of place: group the digits by three (1,250.50 or 1.250,50), or leave the separators out (1250.50)."
        )
    })?;
    if digits.is_empty() {
        return Err(format!(
            "“{t}” has no whole amount: write 0.50 for fifty cents."
        ));
    }
    let whole = match digits.parse::<i64>() {
        Ok(w) if w <= MAX_CENTS / 100 => w,
        _ => {
            return Err(format!(
                "“{t}” is above the highest price, {}.",
                format(MAX_CENTS)
            ));
        }
    };
    let cents = whole * 100 + format!("{cents:0<2}").parse::<i64>().unwrap_or(0);
    if cents == 0 {
        return Err(format!("“{t}” is zero: a price is above zero."));
    }
    if cents > MAX_CENTS {
        return Err(format!(
            "“{t}” is above the highest price, {}.",
            format(MAX_CENTS)
        ));
    }
    Ok(cents)
}

/// "1250" → "1,250" (for messages); digits too many for a number are shown as they are.
fn format_plain(digits: &str) -> String {
    match digits.parse::<u64>() {
        Ok(n) => {
            let mut out = String::new();
            let _ = write_grouped(&mut out, n);
            out
        }
        Err(_) => digits.to_string(),
    }
}

/// The digits of a whole amount whose groups (split by any separator) are 1–3 digits then threes;
/// None when a group is out of place.
fn thousands(whole: &str) -> Option<String> {
    let groups: Vec<&str> = whole.split(['.', ',', '_']).collect();
    if groups.len() == 1 {
        return Some(groups[0].to_string());
    }
    let ok = groups.iter().enumerate().all(|(i, g)| {
        g.bytes().all(|b| b.is_ascii_digit())
            && if i == 0 {
                (1..=3).contains(&g.len())
            } else {
                g.len() == 3
            }
    });
    // One kind of separator for grouping: "1,250.000" or "1.2,50" are not prices.
    let kinds = ['.', ',', '_']
        .iter()
        .filter(|k| whole.contains(**k))
        .count();
    (ok && kinds == 1).then(|| groups.concat())
}

/// "12", "12.5", "12,50", "$1,250.00" → cents; None when `read` refuses it.
pub fn parse(text: &str) -> Option<i64> {
    read(text).ok()
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn reads_prices_as_people_write_them() {
        for (text, cents) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("12,50", 1250),
            ("12,5", 1250),
            ("$12.50", 1250),
            ("12.50$", 1250),
            (" $ 12.50 ", 1250),
            ("0.01", 1),
            ("0,99", 99),
            ("12.", 1200),
            ("1,250.50", 125_050),
            ("1.250,50", 125_050),
            ("1 250,50", 125_050),
            ("1\u{a0}250,50", 125_050),
            ("1'250.50", 125_050),
            ("1,250,000", 0),
            ("100.000,00", 10_000_000),
            ("1250", 125_000),
        ] {
            if text == "1,250,000" {
                // Above the highest price: refused, with the amount read.
                let e = read(text).unwrap_err();
                assert!(e.contains("highest"), "{text}: {e}");
                continue;
            }
            assert_eq!(read(text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn refuses_with_how_it_was_read() {
        for (text, says) in [
            ("", "Enter a price"),
            ("1,250", "two ways"),
            ("1.250", "two ways"),
            ("0", "zero"),
            ("0,00", "zero"),
            ("-1", "below zero"),
            ("1.234,567", "at most two decimals"),
            ("12,5,0", "out of place"),
            ("1,25,000.00", "out of place"),
            ("abc", "not a price"),
            ("1e3", "not a price"),
            ("99999999", "highest"),
            ("100000.01", "highest"),
            (",50", "no whole amount"),
        ] {
            let e = read(text).expect_err(text);
            assert!(e.contains(says), "{text:?}: {e}");
        }
        assert!(
            read("1,250").unwrap_err().contains("1,250 or 1.250"),
            "{:?}",
            read("1,250")
        );
    }

    #[test]
    fn shows_thousands_separators() {
        assert_eq!(super::format(1250), "$12.50");
        assert_eq!(super::format(5), "$0.05");
        assert_eq!(super::format(125_050), "$1,250.50");
        assert_eq!(super::format(10_000_000), "$100,000.00");
        assert_eq!(super::format(123_456_789), "$1,234,567.89");
    }
}
