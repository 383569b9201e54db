//! Cases ported from upstream's `quantity_test.go` (TestQuantityParse, TestQuantityString,
//! TestQuantityParseEmit, TestQuantityCmp).

use std::cmp::Ordering;

use super::*;

fn canonical(input: &str) -> String {
    Quantity::parse(input)
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .canonical()
}

#[test]
fn canonical_strings() {
    let cases = [
        // Zero in any suffix.
        ("0", "0"),
        ("0n", "0"),
        ("0Ki", "0"),
        ("0Ti", "0"),
        ("-0", "0"),
        // Binary: exact values stay binary, with the largest suffix.
        ("1Ki", "1Ki"),
        ("8Ki", "8Ki"),
        ("7Mi", "7Mi"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("307200Ki", "300Mi"),
        ("1025024Mi", "1001Gi"),
        ("1024Gi", "1Ti"),
        ("0.5Mi", "512Ki"),
        // Small or fractional binary amounts are shown in decimal.
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        ("100.035Ki", "102435840m"),
        ("0.05Gi", "53687091200m"),
        ("9Ei", "9223372036854775807"),
        ("9223372036854775807Ki", "9223372036854775807"),
        // Decimal SI.
        ("0.5", "500m"),
        ("0.50000", "500m"),
        ("1.5", "1500m"),
        ("1000m", "1"),
        ("1000M", "1G"),
        ("0.001T", "1G"),
        ("1000u", "1m"),
        ("1.08", "1080m"),
        ("1080000000n", "1080m"),
        ("100.035k", "100.035k"),
        ("10.035M", "10.035M"),
        ("10.0351M", "10035100"),
        ("0.0005k", "500m"),
        (".0001k", "100m"),
        ("1.", "1."),
        ("1.G", "1.G"),
        ("1.0G", "1G"),
        ("12E", "12E"),
        ("1000E", "1e21"),
        // Rounded up to nano.
        ("3.001n", "4n"),
        ("0.0000000001", "1n"),
        ("0.00000012345", "124n"),
        ("0.9n", "1n"),
        // Decimal exponent.
        ("1e3", "1e3"),
        ("1E3", "1E3"),
        ("1e9", "1e9"),
        (".001e12", "1e9"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("1.2e3", "1200"),
        ("1.3E+6", "1300e3"),
        ("1.1E-9", "2e-9"),
        ("00", "0"),
        // Already-canonical inputs are written back verbatim, sign included.
        ("+3Mi", "+3Mi"),
        ("-9.01", "-9010m"),
        ("-1024Mi", "-1Gi"),
        ("-.000000000001Ki", "-2n"),
    ];
    for (input, want) in cases {
        assert_eq!(canonical(input), want, "canonical form of {input:?}");
    }
}

#[test]
fn canonical_strings_parse_to_themselves() {
    for s in [
        "1Gi", "300Mi", "6Ki", "5", "500m", "1G", "80m", "1080m", "1e9", "80e-3", "1n",
    ] {
        assert_eq!(canonical(s), s);
        assert_eq!(canonical(&format!("-{s}")), format!("-{s}"));
    }
}

#[test]
fn invalid_quantities_give_upstream_errors() {
    for input in [
        "", "1.1.M", "1+1.0M", "aoeu", " 1", "1 ", "-3.01e-x", "10Gb",
    ] {
        assert_eq!(
            Quantity::parse(input).unwrap_err(),
            FORMAT_ERROR,
            "{input:?}"
        );
    }
    for input in [
        "0.1mi",
        "1i",
        ".5i",
        "-3.01i",
        "-3.01e-",
        "1e4294967297",
        "1e",
    ] {
        assert_eq!(
            Quantity::parse(input).unwrap_err(),
            SUFFIX_ERROR,
            "{input:?}"
        );
    }
}

#[test]
fn comparison_is_exact() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    assert_eq!(q("0").cmp(&q("0")), Ordering::Equal);
    assert_eq!(q("100m").cmp(&q("50m")), Ordering::Greater);
    assert_eq!(q("50m").cmp(&q("100m")), Ordering::Less);
    assert_eq!(q("10000T").cmp(&q("100Gi")), Ordering::Greater);
    assert_eq!(q("1Gi"), q("1024Mi"));
    assert_eq!(q("1"), q("1000m"));
    assert!(q("-1") < q("0"));
    assert!(q("-2") < q("-1500m"));
    assert!(q("900m") < q("901m"));
    assert!(q("1e2000000") > q("1E"));
    assert!(q("1000000000000000000001n") > q("1e12"));
}

#[test]
fn values_round_away_from_zero() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    assert_eq!(q("1.5").milli_value(), 1500);
    assert_eq!(q("1.5").value(), 2);
    assert_eq!(q("500m").value(), 1);
    assert_eq!(q("-1.5").value(), -2);
    assert_eq!(q("1Gi").value(), 1 << 30);
    assert_eq!(q("1n").milli_value(), 1);
    assert_eq!(q("1e30").value(), i64::MAX);
}

#[test]
fn formats() {
    let format = |s: &str| Quantity::parse(s).unwrap().format();
    assert_eq!(format("1Ki"), Format::BinarySI);
    assert_eq!(format("0.000000000001Ki"), Format::DecimalSI);
    assert_eq!(format("1e3"), Format::DecimalExponent);
    assert_eq!(format("5m"), Format::DecimalSI);
}
