//! Images partners send: the types WeChat takes (protocol notes §3.4), told by their
//! bytes, and base64 images decoded and checked.

use base64::Engine;

/// The largest image downloaded from a partner's URL (WeChat's image limit, §3.4 and §7).
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The largest base64 image, decoded: it is stored with the message, and a DynamoDB item
/// holds at most 400 KB.
pub const MAX_BASE64_IMAGE_BYTES: usize = 256 * 1024;

/// The image types WeChat takes, told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Gif,
}

impl ImageType {
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageType::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageType::Gif)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageType::Jpeg => "jpg",
            ImageType::Png => "png",
            ImageType::Gif => "gif",
        }
    }
}

/// An image ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub kind: ImageType,
}

/// A base64 image, decoded and checked; the error is the reason given for `content.base64`.
pub fn decode_base64(encoded: &str) -> Result<Image, &'static str> {
    const TOO_LARGE: &str = "at most 256 KiB decoded";
    // Refused before decoding: base64 takes 4 characters for every 3 bytes.
    if encoded.len() > MAX_BASE64_IMAGE_BYTES.div_ceil(3) * 4 {
        return Err(TOO_LARGE);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "must be base64")?;
    if bytes.len() > MAX_BASE64_IMAGE_BYTES {
        return Err(TOO_LARGE);
    }
    let kind = ImageType::sniff(&bytes).ok_or("must be a JPEG, PNG or GIF image")?;
    Ok(Image { bytes, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn types_are_told_by_their_first_bytes() {
        assert_eq!(ImageType::sniff(JPEG), Some(ImageType::Jpeg));
        assert_eq!(ImageType::sniff(PNG), Some(ImageType::Png));
        assert_eq!(ImageType::sniff(GIF), Some(ImageType::Gif));
        assert_eq!(ImageType::sniff(b"GIF87a"), Some(ImageType::Gif));
        for other in [
            &b"<!doctype html><html>"[..],
            b"",
            &[0xFF, 0xD8],
            b"\x89PNG",
            b"GIF90a",
            b"RIFF\0\0\0\0WEBP",
            b"{\"errcode\":0}",
        ] {
            assert_eq!(ImageType::sniff(other), None, "{other:?}");
        }
        assert_eq!(ImageType::Png.content_type(), "image/png");
        assert_eq!(ImageType::Jpeg.extension(), "jpg");
    }

    #[test]
    fn base64_images_must_decode_fit_and_be_images() {
        assert_eq!(
            decode_base64(&b64(PNG)),
            Ok(Image {
                bytes: PNG.to_vec(),
                kind: ImageType::Png
            })
        );
        assert_eq!(decode_base64("not base64!"), Err("must be base64"));
        assert_eq!(
            decode_base64(&b64(b"<html></html>")),
            Err("must be a JPEG, PNG or GIF image")
        );
        let mut largest = JPEG.to_vec();
        largest.resize(MAX_BASE64_IMAGE_BYTES, 0);
        assert!(decode_base64(&b64(&largest)).is_ok());
        largest.push(0);
        assert_eq!(
            decode_base64(&b64(&largest)),
            Err("at most 256 KiB decoded")
        );
        assert_eq!(
            decode_base64(&"A".repeat(10 * MAX_BASE64_IMAGE_BYTES)),
            Err("at most 256 KiB decoded")
        );
    }
}
