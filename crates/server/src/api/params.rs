//! Query parameters several endpoints share.

use super::ApiError;

/// `limit=N`: `default` when absent or empty, else a whole number in
/// `1..=max`; anything else is a 400 naming the bounds.
pub fn limit(given: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match given.map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be between 1 and {max}, not `{text}`"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit(None, 100, 500).unwrap(), 100);
        assert_eq!(limit(Some(" "), 100, 500).unwrap(), 100);
        assert_eq!(limit(Some("7"), 100, 500).unwrap(), 7);
        assert_eq!(limit(Some("500"), 100, 500).unwrap(), 500);
        for bad in ["0", "501", "-1", "ten", "1.5"] {
            let error = limit(Some(bad), 100, 500).unwrap_err();
            assert!(error.to_string().contains("between 1 and 500"), "{error}");
        }
    }
}
