//! What both benchmarks open: one typical encrypted text push per format, and the raw
//! primitives that opening it cannot do without (the floor).

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, InnerIvInit, KeyInit};
use base64::Engine;
use sha1::Digest;
use std::hint::black_box;
use wxbridge_wechat::callback::{parse_document, Freshness, PushQuery};
use wxbridge_wechat::encode::{seal, SignedPush};
use wxbridge_wechat::endpoint::{EncryptionMode, PushEndpoint, PushFormat};
use wxbridge_wechat::event::{CallbackEvent, EventKind};

pub const TIMESTAMP: i64 = 1_714_112_445;
pub const TOKEN: &str = "spamtest";
pub const ENCODING_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const APP_ID: &str = "wx2c2769f8efd9abc2";
pub const FRESHNESS: Freshness = Freshness {
    now_secs: TIMESTAMP,
    tolerance_secs: Some(300),
};

/// One format's channel and its sealed push.
pub struct Case {
    pub format: &'static str,
    pub channel: PushEndpoint,
    pub push: SignedPush,
    pub query: PushQuery,
}

pub fn cases() -> [Case; 2] {
    let event = typical_text();
    let case = |format, push_format| {
        let channel = PushEndpoint::new(
            format,
            APP_ID,
            "gh_10f6c3c3ac5a",
            TOKEN,
            Some(ENCODING_AES_KEY),
            EncryptionMode::Safe,
            push_format,
        )
        .expect("bench endpoint");
        let push = seal(&channel, &event, TIMESTAMP, "1320562132");
        let query = push.push_query();
        Case {
            format,
            channel,
            push,
            query,
        }
    };
    [case("xml", PushFormat::Xml), case("json", PushFormat::Json)]
}

pub fn typical_text() -> CallbackEvent {
    CallbackEvent {
        to_user_name: "gh_10f6c3c3ac5a".into(),
        from_user_name: "oyORnuP8q7ou2gfYjqLzSIWZf0rs".into(),
        create_time: TIMESTAMP,
        business_id: None,
        kind: EventKind::Text {
            msg_id: "24602948207352816".into(),
            content: "你好，请问我的酒店订单 #HT-20261126-0042 含早餐吗？Is breakfast included?"
                .into(),
        },
    }
}

impl Case {
    pub fn query_value(&self, name: &str) -> &str {
        &self
            .push
            .query
            .iter()
            .find(|(k, _)| k == name)
            .expect("query parameter")
            .1
    }

    pub fn encrypt(&self) -> String {
        let outer = parse_document(&self.push.body).unwrap();
        outer
            .get("Encrypt")
            .and_then(|n| n.as_str())
            .unwrap()
            .to_owned()
    }

    pub fn floor(&self) -> Floor {
        let encrypt = self.encrypt();
        let mut parts = [
            TOKEN,
            self.query_value("timestamp"),
            self.query_value("nonce"),
            encrypt.as_str(),
        ];
        parts.sort_unstable();
        // The EncodingAESKey's last character carries trailing bits: decoded leniently.
        let key = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        )
        .decode(format!("{ENCODING_AES_KEY}="))
        .unwrap();
        let ciphertext = base64_simd::STANDARD
            .decode_to_vec(encrypt.as_bytes())
            .unwrap();
        let message = self
            .channel
            .key
            .as_ref()
            .unwrap()
            .decrypt(&encrypt, APP_ID)
            .unwrap();
        Floor {
            json: self.format == "json",
            signed: parts.concat(),
            body: self.push.body.clone(),
            cipher: aes::Aes256::new_from_slice(&key).unwrap(),
            iv: key[..16].to_vec(),
            plain: vec![0; ciphertext.len()],
            ciphertext,
            encrypt,
            message,
        }
    }
}

/// The primitives of opening one push, each on the same bytes as `open_push` sees: SHA-1 of
/// the signed string, base64, AES-256-CBC with the key schedule expanded once, and borrowed
/// parses of the envelope and the message (no typed event, no checks).
pub struct Floor {
    json: bool,
    signed: String,
    body: String,
    encrypt: String,
    ciphertext: Vec<u8>,
    cipher: aes::Aes256,
    iv: Vec<u8>,
    plain: Vec<u8>,
    message: String,
}

pub const FLOOR_PARTS: [&str; 5] = ["sha1", "base64", "aes_cbc", "envelope", "parse"];

impl Floor {
    /// Runs one part by its name in [`FLOOR_PARTS`].
    pub fn run(&mut self, part: &str) -> usize {
        match part {
            "sha1" => sha1::Sha1::digest(black_box(self.signed.as_bytes())).len(),
            "base64" => base64_simd::STANDARD
                .decode_to_vec(black_box(self.encrypt.as_bytes()))
                .unwrap()
                .len(),
            "aes_cbc" => {
                cbc::Decryptor::<aes::Aes256>::inner_iv_slice_init(self.cipher.clone(), &self.iv)
                    .unwrap()
                    .decrypt_padded_b2b_mut::<NoPadding>(
                        black_box(&self.ciphertext),
                        &mut self.plain,
                    )
                    .unwrap()
                    .len()
            }
            "envelope" if self.json => serde_json::from_str::<JsonEnvelope>(black_box(&self.body))
                .unwrap()
                .encrypt
                .len(),
            "envelope" => xml_texts(black_box(&self.body)),
            "parse" if self.json => serde_json::from_str::<JsonText>(black_box(&self.message))
                .unwrap()
                .content
                .len(),
            "parse" => xml_texts(black_box(&self.message)),
            other => panic!("no floor part {other}"),
        }
    }
}

#[derive(serde::Deserialize)]
struct JsonEnvelope<'a> {
    #[serde(rename = "Encrypt", borrow)]
    encrypt: &'a str,
}

/// A text message's fields, borrowed.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read by the parse, not by the bench
struct JsonText<'a> {
    #[serde(rename = "ToUserName", borrow)]
    to_user_name: &'a str,
    #[serde(rename = "FromUserName", borrow)]
    from_user_name: &'a str,
    #[serde(rename = "CreateTime")]
    create_time: i64,
    #[serde(rename = "MsgType", borrow)]
    msg_type: &'a str,
    #[serde(rename = "Content", borrow)]
    content: std::borrow::Cow<'a, str>,
    #[serde(rename = "MsgId")]
    msg_id: serde_json::Value,
}

/// Every text and CDATA node of an XML document, borrowed.
fn xml_texts(document: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(document);
    let mut total = 0;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Text(text) => total += text.len(),
            quick_xml::events::Event::CData(text) => total += text.len(),
            quick_xml::events::Event::Eof => return total,
            _ => {}
        }
    }
}
