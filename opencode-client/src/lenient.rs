//! Forgiving decoders for the numbers OpenCode sends.
//!
//! The OpenAPI document types token counts and several times as JSON `number`, not `integer`.
//! They are whole numbers in every capture, but a `3.0` or a `null` must not make a whole
//! message undecodable, so these accept any JSON number (rounded) and treat `null` as absent.

use serde::{Deserialize, Deserializer};

/// A non-negative whole number from any JSON number; `null` or a missing field is 0.
pub(crate) fn u64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(opt_u64(d)?.unwrap_or(0))
}

/// A non-negative whole number from any JSON number; `null` is `None`.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.map(to_u64))
}

/// Rounds to the nearest whole number, clamping negatives and NaN to 0.
fn to_u64(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // Saturates above u64::MAX, far beyond any token count or timestamp.
        value.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "super::u64_or_zero")]
        count: u64,
        #[serde(default, deserialize_with = "super::opt_u64")]
        at: Option<u64>,
    }

    fn probe(json: &str) -> (u64, Option<u64>) {
        let p: Probe = serde_json::from_str(json).unwrap();
        (p.count, p.at)
    }

    #[test]
    fn integers_floats_and_nulls_all_decode() {
        assert_eq!(
            probe(r#"{"count":110,"at":1796304665697}"#),
            (110, Some(1796304665697))
        );
        assert_eq!(probe(r#"{"count":2.6,"at":null}"#), (3, None));
        assert_eq!(probe(r#"{"count":-4}"#), (0, None));
        assert_eq!(probe(r#"{}"#), (0, None));
    }
}
