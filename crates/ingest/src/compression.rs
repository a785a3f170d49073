//! Request body decompression with a size limit.
//!
//! A gzip body of a megabyte can inflate to a gigabyte (a "gzip bomb"), so
//! the decompressed size is capped by [`Limits::max_decompressed_bytes`]: the
//! decoder reads at most one byte past the limit, and a body that produces
//! that byte is refused before anything more is allocated.

use std::io::Read;

use bytes::Bytes;
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

use crate::{DecodeError, Limits};

/// What the error names when the decompressed body is over the limit.
const DECOMPRESSED_BODY: &str = "decompressed body";

/// The first guess at how much a compressed body grows, for the initial
/// allocation (telemetry typically compresses 5-10x); never more than the limit.
const EXPECTED_RATIO: usize = 8;

/// Decompresses `body` as its `Content-Encoding` says.
///
/// - no header, `identity` or `none`: the body as is (no copy);
/// - `gzip` or `x-gzip`: gzip, including several concatenated members;
/// - `deflate`: zlib-wrapped deflate as HTTP defines it, or raw deflate,
///   which some clients send under the same name.
///
/// Anything else is [`DecodeError::UnsupportedEncoding`]. A corrupt stream is
/// [`DecodeError::Malformed`]; more than `limits.max_decompressed_bytes` of
/// output is [`DecodeError::TooLarge`].
pub fn decompress(
    body: Bytes,
    content_encoding: Option<&str>,
    limits: &Limits,
) -> Result<Bytes, DecodeError> {
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    if encoding.is_empty()
        || encoding.eq_ignore_ascii_case("identity")
        || encoding.eq_ignore_ascii_case("none")
    {
        return Ok(body);
    }
    if encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip") {
        return inflate(MultiGzDecoder::new(&body[..]), "gzip", body.len(), limits);
    }
    if encoding.eq_ignore_ascii_case("deflate") {
        return if has_zlib_header(&body) {
            inflate(ZlibDecoder::new(&body[..]), "deflate", body.len(), limits)
        } else {
            inflate(
                DeflateDecoder::new(&body[..]),
                "deflate",
                body.len(),
                limits,
            )
        };
    }
    // Keep what is echoed back short: the header came from the client.
    Err(DecodeError::UnsupportedEncoding(
        encoding.chars().take(64).collect(),
    ))
}

/// Reads `decoder` to the end, failing once it yields more than the limit.
fn inflate(
    decoder: impl Read,
    format: &'static str,
    compressed_len: usize,
    limits: &Limits,
) -> Result<Bytes, DecodeError> {
    let limit = limits.max_decompressed_bytes;
    let capacity = compressed_len.saturating_mul(EXPECTED_RATIO).min(limit);
    let mut out = Vec::with_capacity(capacity);
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder.take(cap).read_to_end(&mut out).map_err(|error| {
        DecodeError::malformed(format, format!("invalid {format} stream: {error}"))
    })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge {
            what: DECOMPRESSED_BODY,
            limit,
        });
    }
    Ok(Bytes::from(out))
}

/// Whether `body` starts with a zlib header (RFC 1950): method 8 (deflate),
/// a window of at most 32 KiB, and a header checksum that is a multiple of 31.
fn has_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::{Compress, Compression, Crc, FlushCompress};

    use super::*;

    fn limits(max_decompressed_bytes: usize) -> Limits {
        Limits {
            max_decompressed_bytes,
            ..Limits::default()
        }
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    /// A gzip stream of `mib` MiB of zeroes, built without holding them:
    /// one MiB is deflated with a full flush (byte-aligned, no reference to
    /// earlier data), and that block is repeated. CRCs are combined rather
    /// than computed over the whole, so a 1 GiB bomb costs milliseconds.
    fn gzip_bomb(mib: u32) -> Vec<u8> {
        let zeros = vec![0u8; 1 << 20];
        let mut block = Vec::with_capacity(64 << 10);
        let mut compress = Compress::new(Compression::best(), false);
        compress
            .compress_vec(&zeros, &mut block, FlushCompress::Full)
            .unwrap();
        assert_eq!(
            compress.total_in(),
            zeros.len() as u64,
            "the whole MiB fits in one call"
        );
        let mut last = Vec::with_capacity(16);
        Compress::new(Compression::best(), false)
            .compress_vec(&[], &mut last, FlushCompress::Finish)
            .unwrap();

        let mut one = Crc::new();
        one.update(&zeros);
        let mut crc = Crc::new();
        for _ in 0..mib {
            crc.combine(&one);
        }

        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        for _ in 0..mib {
            out.extend_from_slice(&block);
        }
        out.extend_from_slice(&last);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&crc.amount().to_le_bytes());
        out
    }

    #[test]
    fn identity_returns_the_same_bytes() {
        let body = Bytes::from_static(b"\x0a\x00");
        for encoding in [
            None,
            Some(""),
            Some("identity"),
            Some("IDENTITY"),
            Some("none"),
            Some(" none "),
        ] {
            let out = decompress(body.clone(), encoding, &Limits::default()).unwrap();
            assert_eq!(out, body, "{encoding:?}");
            // No copy: the same allocation comes back.
            assert_eq!(out.as_ptr(), body.as_ptr(), "{encoding:?}");
        }
    }

    #[test]
    fn gzip_and_x_gzip_are_inflated() {
        let data = b"{\"resourceSpans\":[]}".repeat(100);
        for encoding in ["gzip", "x-gzip", "GZIP"] {
            let out = decompress(gzip(&data), Some(encoding), &Limits::default()).unwrap();
            assert_eq!(&out[..], &data[..], "{encoding}");
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let mut body = gzip(b"hello ").to_vec();
        body.extend_from_slice(&gzip(b"world"));
        let out = decompress(Bytes::from(body), Some("gzip"), &Limits::default()).unwrap();
        assert_eq!(&out[..], b"hello world");
    }

    #[test]
    fn deflate_with_and_without_zlib_wrapper() {
        let data = b"span span span span span".repeat(20);
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&data).unwrap();
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&data).unwrap();
        for (name, body) in [
            ("zlib", zlib.finish().unwrap()),
            ("raw", raw.finish().unwrap()),
        ] {
            let out = decompress(Bytes::from(body), Some("deflate"), &Limits::default()).unwrap();
            assert_eq!(&out[..], &data[..], "{name}");
        }
    }

    #[test]
    fn exactly_the_limit_is_accepted_one_more_byte_is_not() {
        let data = vec![7u8; 1000];
        let out = decompress(gzip(&data), Some("gzip"), &limits(1000)).unwrap();
        assert_eq!(out.len(), 1000);
        let err = decompress(gzip(&data), Some("gzip"), &limits(999)).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::TooLarge {
                    what: "decompressed body",
                    limit: 999
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_bomb_builder_makes_valid_gzip() {
        // A small bomb from the same builder inflates to exactly its size,
        // trailer checked, so the 1 GiB one below is a real gzip stream.
        let bomb = gzip_bomb(3);
        let mut out = Vec::new();
        MultiGzDecoder::new(&bomb[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 3 << 20);
        assert!(out.iter().all(|b| *b == 0));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip_bomb(1024);
        // About 1 KiB per MiB: a 1 GiB bomb that fits in any body limit.
        assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
        let err = decompress(Bytes::from(bomb), Some("gzip"), &limits(4 << 20)).unwrap_err();
        match err {
            DecodeError::TooLarge { what, limit } => {
                assert_eq!(what, "decompressed body");
                assert_eq!(limit, 4 << 20);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_gzip_is_malformed() {
        let mut body = gzip(&b"some spans".repeat(50)).to_vec();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not gzip at all", b"this is plain text".to_vec()),
            ("truncated", body[..body.len() / 2].to_vec()),
            ("bad crc", {
                let n = body.len();
                body[n - 8] ^= 0xff;
                body.clone()
            }),
            ("empty", Vec::new()),
        ];
        for (name, bytes) in cases {
            let err = decompress(Bytes::from(bytes), Some("gzip"), &Limits::default()).unwrap_err();
            assert!(
                matches!(err, DecodeError::Malformed { format: "gzip", .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn other_encodings_are_unsupported() {
        for encoding in ["br", "zstd", "snappy", "gzip, br", "compress"] {
            let err = decompress(Bytes::from_static(b"x"), Some(encoding), &Limits::default())
                .unwrap_err();
            match err {
                DecodeError::UnsupportedEncoding(name) => assert_eq!(name, encoding),
                other => panic!("{encoding}: expected UnsupportedEncoding, got {other:?}"),
            }
        }
    }

    #[test]
    fn zlib_header_check() {
        assert!(has_zlib_header(&[0x78, 0x9c]));
        assert!(has_zlib_header(&[0x78, 0x01]));
        assert!(!has_zlib_header(&[0x78]));
        assert!(!has_zlib_header(&[0x1f, 0x8b]));
    }
}
