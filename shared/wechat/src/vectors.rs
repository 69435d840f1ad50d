//! Official WeChat and WeCom test vectors (protocol notes §1.2–§1.4 and §7).
//!
//! Public so that tests, benchmarks, sample events and the local simulator all speak from
//! the same bytes Tencent published.

/// Mini-program message push (MP-PUSH): token, all-zero key, appid, original id.
pub const MP_TOKEN: &str = "AAAAA";
pub const MP_ENCODING_AES_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
pub const MP_APPID: &str = "wxba5fad812f8e6fb9";
pub const MP_ORIGINAL_ID: &str = "gh_97417a04a28d";
pub const MP_OPENID: &str = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";

/// GET URL verification.
pub const MP_GET_TIMESTAMP: &str = "1714036504";
pub const MP_GET_NONCE: &str = "1514711492";
pub const MP_GET_ECHOSTR: &str = "4375120948345356249";
pub const MP_GET_SIGNATURE: &str = "f464b24fc39322e44b38aa78f5edd27bd1441696";

/// Plaintext-mode POST (JSON).
pub const MP_PLAIN_TIMESTAMP: &str = "1714037059";
pub const MP_PLAIN_NONCE: &str = "486452656";
pub const MP_PLAIN_SIGNATURE: &str = "899cf89e464efb63f54ddac96b0a0a235f53aa78";
pub const MP_PLAIN_BODY: &str = r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714037059,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#;

/// Safe-mode POST (JSON); the decrypted buffer ends in a pad of 19.
pub const MP_SAFE_TIMESTAMP: &str = "1714112445";
pub const MP_SAFE_NONCE: &str = "415670741";
pub const MP_SAFE_SIGNATURE: &str = "6c5c811b55cc85e0e1b54100749188c20beb3f5d";
pub const MP_SAFE_MSG_SIGNATURE: &str = "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3";
pub const MP_SAFE_ENCRYPT: &str = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=";
/// The query string of the safe-mode push, as name/value pairs.
pub const MP_SAFE_QUERY: [(&str, &str); 6] = [
    ("signature", MP_SAFE_SIGNATURE),
    ("timestamp", MP_SAFE_TIMESTAMP),
    ("nonce", MP_SAFE_NONCE),
    ("openid", MP_OPENID),
    ("encrypt_type", "aes"),
    ("msg_signature", MP_SAFE_MSG_SIGNATURE),
];
/// The safe-mode push body (JSON).
pub const MP_SAFE_BODY: &str = concat!(r#"{"ToUserName":"gh_97417a04a28d","Encrypt":""#, "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=", r#""}"#);
pub const MP_SAFE_PLAINTEXT: &str = r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#;
pub const MP_SAFE_RANDOM: &[u8; 16] = b"a8eedb185eb2fecf";

/// Encrypted reply.
pub const MP_REPLY_PLAINTEXT: &str = r#"{"demo_resp":"good luck"}"#;
pub const MP_REPLY_RANDOM: &[u8; 16] = b"707722b803182950";
pub const MP_REPLY_ENCRYPT: &str =
    "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==";
pub const MP_REPLY_TIMESTAMP: &str = "1713424427";
pub const MP_REPLY_NONCE: &str = "415670741";
pub const MP_REPLY_MSG_SIGNATURE: &str = "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1";

/// The sub-merchant session push of the mini program customer-service guide
/// (developers.weixin.qq.com/miniprogram/introduction/custom.html, 发送客服消息; protocol
/// notes §10): a text with `BusinessId` as a JSON number.
pub const MP_SUB_MERCHANT_TEXT_JSON: &str = r#"{"ToUserName":"toUser","FromUserName":"fromUser","CreateTime":1482048670,"MsgType":"text","Content":"this is a test","MsgId":1234567890123456,"BusinessId":1}"#;

/// WeCom official sample (`weworkapi_python/callback/Sample.py`); receiveid is the CorpID.
pub const WECOM_TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
pub const WECOM_ENCODING_AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
pub const WECOM_CORPID: &str = "ww1436e0e65a779aee";
pub const WECOM_ECHOSTR: &str =
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
pub const WECOM_ECHOSTR_PLAIN: &str = "1288432023552776189";
pub const WECOM_ENCRYPT: &str = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+";
pub const WECOM_PLAINTEXT: &str = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>";

/// WeCom / enterprise-account 2014 sample (WXBizMsgCrypt samples).
pub const WECOM2014_TOKEN: &str = "QDG6eK";
pub const WECOM2014_ENCODING_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const WECOM2014_CORPID: &str = "wx5823bf96d3bd56c7";
pub const WECOM2014_ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
pub const WECOM2014_ECHOSTR_PLAIN: &str = "1616140317555161061";
pub const WECOM2014_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

/// Official Accounts cryptoDemo sample (compatible-mode XML).
pub const OA_TOKEN: &str = "spamtest";
pub const OA_ENCODING_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const OA_APPID: &str = "wx2c2769f8efd9abc2";
pub const OA_TIMESTAMP: &str = "1409735669";
pub const OA_NONCE: &str = "1320562132";
pub const OA_MSG_SIGNATURE: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
pub const OA_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
pub const OA_ORIGINAL_ID: &str = "gh_10f6c3c3ac5a";
pub const OA_OPENID: &str = "oyORnuP8q7ou2gfYjqLzSIWZf0rs";

#[cfg(test)]
mod tests {
    #[test]
    fn the_safe_body_carries_the_official_ciphertext() {
        assert!(super::MP_SAFE_BODY.contains(super::MP_SAFE_ENCRYPT));
        assert!(super::MP_SAFE_BODY.contains(super::MP_ORIGINAL_ID));
    }

    #[test]
    fn the_guides_sub_merchant_push_reads_with_its_business_id() {
        let document = crate::callback::parse_document(super::MP_SUB_MERCHANT_TEXT_JSON).unwrap();
        let event = crate::event::CallbackEvent::from_document(document).unwrap();
        assert_eq!(event.business_id.as_deref(), Some("1"));
        assert_eq!(event.msg_id(), Some("1234567890123456"));
        // Written back, it is the guide's bytes.
        assert_eq!(
            crate::encode::encode(&event, crate::endpoint::PushFormat::Json),
            super::MP_SUB_MERCHANT_TEXT_JSON
        );
    }
}
