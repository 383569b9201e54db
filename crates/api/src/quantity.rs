//! `resource.Quantity` as upstream's apimachinery has it (`pkg/api/resource/quantity.go`):
//! exact parsing of `500m`, `1.5Gi`, `1e3`, the canonical string the API server writes back
//! (`0.5` → `500m`, `1024Mi` → `1Gi`), and exact comparison.
//!
//! Values are held as an arbitrary-precision mantissa and a base-10 exponent, so no rounding
//! happens beyond upstream's own (non-zero values round up, away from zero, to `1n`).

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, Sign};

/// Upstream's `ErrFormatWrong`.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// Upstream's `ErrNumeric`.
pub const NUMERIC_ERROR: &str = "unable to parse numeric part of quantity";
/// Upstream's `ErrSuffix`.
pub const SUFFIX_ERROR: &str = "unable to parse quantity's suffix";

/// The smallest scale a parsed quantity keeps (nano, 10^-9).
const NANO: i64 = -9;

/// How a quantity is written back: upstream's `resource.Format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `1e3`, `12e-6`.
    DecimalExponent,
    /// `1Ki`, `5Gi`.
    BinarySI,
    /// `500m`, `1k`, `2M`.
    DecimalSI,
}

/// An exact quantity: `mantissa × 10^exponent`, with the format it was written in.
#[derive(Clone, Debug)]
pub struct Quantity {
    mantissa: BigInt,
    exponent: i64,
    format: Format,
    /// The input, kept when upstream's parser recognises it as already canonical (upstream
    /// writes such strings back verbatim, e.g. `+3Mi`).
    verbatim: Option<String>,
}

/// The pieces upstream's `parseQuantityString` cuts a quantity into.
struct Parts<'a> {
    positive: bool,
    /// Sign, digits and decimal point (what `inf.Dec` parses on the slow path).
    value: &'a str,
    /// Integer digits without leading zeros (`"0"` if none).
    num: &'a str,
    /// Fraction digits.
    denom: &'a str,
    suffix: &'a str,
}

/// Port of `parseQuantityString`: a scanner, not a validator of the suffix.
fn scan(s: &str) -> Result<Parts<'_>, String> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parts {
            positive,
            value: "0",
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let whole = |num, denom| Parts {
        positive,
        value: s,
        num,
        denom,
        suffix: "",
    };
    if pos >= end {
        return Ok(whole(&s[num_start..], ""));
    }
    let num = match &s[num_start..pos] {
        "" => "0",
        digits => digits,
    };
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return Ok(whole(num, denom));
        }
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(FORMAT_ERROR.to_string());
    }
    Ok(Parts {
        positive,
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// Upstream's suffix tables: `(base, exponent, format)`; base 2 exponents are powers of two.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((10, e, Format::DecimalSI));
    }
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = binary {
        return Some((2, e, Format::BinarySI));
    }
    let rest = suffix.strip_prefix(['e', 'E']).filter(|r| !r.is_empty())?;
    // Exponents beyond the int32 scale are rejected rather than truncated (as upstream since
    // the fix that stopped `1e4294967297` parsing as `1e1`).
    let parsed: i32 = rest.parse().ok().filter(|e: &i32| *e != i32::MIN)?;
    Some((10, parsed, Format::DecimalExponent))
}

/// `inf.Dec.SetString` on `[+-]digits[.digits]`: the unscaled value and its base-10 exponent.
fn parse_decimal(value: &str) -> Option<(BigInt, i64)> {
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let magnitude = BigInt::parse_bytes(digits.as_bytes(), 10)?;
    let mantissa = if negative { -magnitude } else { magnitude };
    Some((mantissa, -(frac.len() as i64)))
}

fn pow10(n: u64) -> BigInt {
    num_bigint::BigUint::from(10u32).pow(n as u32).into()
}

/// `n / d` rounded away from zero (`d > 0`).
fn div_away_from_zero(n: &BigInt, d: &BigInt) -> BigInt {
    let q = n / d;
    if (&q * d) == *n {
        q
    } else if n.sign() == Sign::Minus {
        q - 1
    } else {
        q + 1
    }
}

impl Quantity {
    /// Parse `input` as upstream's `ParseQuantity` does; `Err` holds upstream's message.
    pub fn parse(input: &str) -> Result<Quantity, String> {
        if input.is_empty() {
            return Err(FORMAT_ERROR.to_string());
        }
        if input == "0" {
            return Ok(Quantity {
                mantissa: BigInt::default(),
                exponent: 0,
                format: Format::DecimalSI,
                verbatim: Some(input.to_string()),
            });
        }
        let parts = scan(input)?;
        let (base, exponent, mut format) =
            interpret(parts.suffix).ok_or_else(|| SUFFIX_ERROR.to_string())?;
        let (num, denom) = (parts.num, parts.denom);

        // Upstream's int64 fast path; its "already canonical" test decides what is kept verbatim.
        let (mut scale, precision, multiplier) = match format {
            Format::DecimalExponent | Format::DecimalSI => (
                i64::from(exponent),
                18 - (num.len() + denom.len()) as i64,
                1i64,
            ),
            Format::BinarySI if exponent >= 0 && denom.is_empty() => (
                0,
                15 - num.len() as i64 - i64::from(exponent) * 3 / 10 - 1,
                1i64 << exponent,
            ),
            Format::BinarySI => (0, -1, 1),
        };
        if precision >= 0 {
            scale -= denom.len() as i64;
            if scale >= NANO {
                let shifted = format!("{num}{denom}");
                let value: i64 = shifted.parse().map_err(|_| NUMERIC_ERROR.to_string())?;
                if let Some(result) = value.checked_mul(multiplier) {
                    let canonical = match format {
                        Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
                        _ => {
                            scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
                        }
                    };
                    return Ok(Quantity {
                        mantissa: BigInt::from(if parts.positive { result } else { -result }),
                        exponent: scale,
                        format,
                        verbatim: canonical.then(|| input.to_string()),
                    });
                }
            }
        }

        // The exact path (upstream's inf.Dec).
        let (mut mantissa, mut exp) =
            parse_decimal(parts.value).ok_or_else(|| NUMERIC_ERROR.to_string())?;
        if base == 10 {
            exp += i64::from(exponent);
        } else {
            mantissa <<= exponent as usize;
        }
        let negative = mantissa.sign() == Sign::Minus;
        if negative {
            mantissa = -mantissa;
        }
        // Non-zero values round up to the smallest representable amount (1n).
        if mantissa.sign() != Sign::NoSign && exp < NANO {
            let shift = (NANO - exp) as u64;
            let digits = mantissa.to_string().len() as u64;
            mantissa = if shift > digits {
                BigInt::from(1)
            } else {
                div_away_from_zero(&mantissa, &pow10(shift))
            };
            exp = NANO;
        }
        let mut q = Quantity {
            mantissa,
            exponent: exp,
            format,
            verbatim: None,
        };
        if format == Format::BinarySI && q.cmp_i64(i64::MAX) == Ordering::Greater {
            q.mantissa = BigInt::from(i64::MAX);
            q.exponent = 0;
        }
        if format == Format::BinarySI
            && q.cmp_i64(1) == Ordering::Less
            && q.cmp_i64(0) == Ordering::Greater
        {
            format = Format::DecimalSI;
        }
        q.format = format;
        if negative {
            q.mantissa = -q.mantissa;
        }
        Ok(q)
    }

    /// The format the quantity was written in (after upstream's adjustments).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa.sign() == Sign::NoSign
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.mantissa.sign() == Sign::Minus
    }

    /// Upstream's `Quantity.String()`: the form the API server writes back.
    pub fn canonical(&self) -> String {
        if let Some(s) = &self.verbatim {
            return s.clone();
        }
        if self.is_zero() {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI
            && ((self.cmp_i64(-1024) == Ordering::Greater && self.cmp_i64(1024) == Ordering::Less)
                || !self.is_integer())
        {
            // Small or fractional binary amounts are shown in decimal, without rounding.
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut value = self.scaled(0);
            let mut power = 0;
            let kibi = BigInt::from(1024);
            while (&value % &kibi).sign() == Sign::NoSign {
                value /= &kibi;
                power += 10;
            }
            let suffix = match power {
                0 => "",
                10 => "Ki",
                20 => "Mi",
                30 => "Gi",
                40 => "Ti",
                50 => "Pi",
                60 => "Ei",
                // Past Ei there is no binary suffix: exact decimal notation instead.
                _ => return self.decimal(Format::DecimalExponent),
            };
            return format!("{value}{suffix}");
        }
        self.decimal(format)
    }

    /// Canonical base-10 form: mantissa without trailing zeros, exponent a multiple of 3.
    fn decimal(&self, format: Format) -> String {
        let (mut mantissa, mut exp) = (self.mantissa.clone(), self.exponent);
        let ten = BigInt::from(10);
        while (&mantissa % &ten).sign() == Sign::NoSign {
            mantissa /= &ten;
            exp += 1;
        }
        while exp % 3 != 0 {
            mantissa *= &ten;
            exp -= 1;
        }
        let suffix = match format {
            Format::DecimalExponent if exp == 0 => String::new(),
            Format::DecimalExponent => format!("e{exp}"),
            _ => match exp {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                0 => "",
                // No SI suffix this large or small: exponent notation keeps the magnitude.
                _ => return format!("{mantissa}e{exp}"),
            }
            .to_string(),
        };
        format!("{mantissa}{suffix}")
    }

    fn is_integer(&self) -> bool {
        self.exponent >= 0 || {
            let divisor = pow10(self.exponent.unsigned_abs());
            (&self.mantissa % divisor).sign() == Sign::NoSign
        }
    }

    /// The value at base-10 `scale` (0 for units, -3 for milli), rounded away from zero.
    /// The exact sum (`Quantity.Add`), in this quantity's format.
    pub fn add(&self, other: &Quantity) -> Quantity {
        let exponent = self.exponent.min(other.exponent);
        Quantity {
            mantissa: self.scaled(exponent) + other.scaled(exponent),
            exponent,
            format: self.format,
            verbatim: None,
        }
    }

    fn scaled(&self, scale: i64) -> BigInt {
        let shift = self.exponent - scale;
        if shift >= 0 {
            &self.mantissa * pow10(shift as u64)
        } else {
            div_away_from_zero(&self.mantissa, &pow10(shift.unsigned_abs()))
        }
    }

    fn scaled_i64(&self, scale: i64) -> i64 {
        // Beyond int64 upstream overflows; saturating is the closest honest answer.
        if self.magnitude() - scale > 20 {
            return if self.mantissa.sign() == Sign::Minus {
                i64::MIN
            } else {
                i64::MAX
            };
        }
        let v = self.scaled(scale);
        i64::try_from(&v).unwrap_or(if v.sign() == Sign::Minus {
            i64::MIN
        } else {
            i64::MAX
        })
    }

    /// Upstream's `Value()`: the value rounded up (away from zero) to an integer.
    pub fn value(&self) -> i64 {
        self.scaled_i64(0)
    }

    /// Upstream's `MilliValue()`: the value × 1000 rounded up (away from zero).
    pub fn milli_value(&self) -> i64 {
        self.scaled_i64(-3)
    }

    /// Number of digits plus exponent: orders non-zero magnitudes without expanding them.
    fn magnitude(&self) -> i64 {
        let digits = self.mantissa.magnitude().to_string().len() as i64;
        digits + self.exponent
    }

    fn cmp_i64(&self, other: i64) -> Ordering {
        self.cmp(&Quantity {
            mantissa: BigInt::from(other),
            exponent: 0,
            format: Format::DecimalSI,
            verbatim: None,
        })
    }
}

impl Ord for Quantity {
    /// Exact numeric comparison (`Quantity.Cmp`).
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.mantissa.sign(), other.mantissa.sign());
        if a != b || a == Sign::NoSign {
            return a.cmp(&b);
        }
        let by_magnitude = self.magnitude().cmp(&other.magnitude());
        let ordering = if by_magnitude != Ordering::Equal {
            by_magnitude
        } else {
            // Same order of magnitude: the exponents differ by at most the digit counts.
            let low = self.exponent.min(other.exponent);
            self.scaled(low)
                .magnitude()
                .cmp(other.scaled(low).magnitude())
        };
        if a == Sign::Minus {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl std::str::FromStr for Quantity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

#[cfg(test)]
mod tests;
