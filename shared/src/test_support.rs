//! What the unit tests of the SQS functions share: a recording webhook sender and a
//! loopback stand-in for WeChat's token and send APIs.

use crate::webhook::{self, WebhookSender};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Records every webhook (delivery id, body) and answers with the statuses it is given,
/// then 200.
#[derive(Default)]
pub struct FakeWebhooks {
    answers: Mutex<VecDeque<Option<u16>>>,
    posts: Mutex<Vec<(String, Value)>>,
}

impl FakeWebhooks {
    pub fn answer(&self, status: Option<u16>) {
        self.answers.lock().unwrap().push_back(status);
    }

    pub fn posts(&self) -> Vec<(String, Value)> {
        self.posts.lock().unwrap().clone()
    }
}

impl WebhookSender for FakeWebhooks {
    async fn post(
        &self,
        _: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Option<u16> {
        let delivery = headers
            .iter()
            .find(|(name, _)| *name == webhook::DELIVERY_HEADER)
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        self.posts
            .lock()
            .unwrap()
            .push((delivery, serde_json::from_slice(&body).unwrap()));
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Some(200))
    }
}

/// What the stand-in received: (path, body); and the errcodes to answer next, per path.
pub type Calls = Arc<Mutex<Vec<(String, Value)>>>;
pub type WeChatAnswers = Arc<Mutex<VecDeque<(&'static str, i64)>>>;

/// WeChat on loopback: a token for anyone; every other call answers the next errcode told
/// for its path (0 when none), and a call answered 0 is recorded.
pub fn wechat() -> (String, Calls, WeChatAnswers) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let answers: WeChatAnswers = Arc::default();
    let (c, a) = (Arc::clone(&calls), Arc::clone(&answers));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (calls, answers) = (Arc::clone(&c), Arc::clone(&a));
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end().to_ascii_lowercase();
                        if line.is_empty() {
                            break;
                        }
                        if let Some(value) = line.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or_default();
                    let path = path.split('?').next().unwrap_or_default().to_owned();
                    let answer = if path.ends_with("stable_token") {
                        r#"{"access_token":"token-1","expires_in":7200}"#.to_owned()
                    } else {
                        let mut answers = answers.lock().unwrap();
                        let due = answers.iter().position(|(p, _)| path.ends_with(p));
                        let code = due.and_then(|i| answers.remove(i)).map_or(0, |(_, c)| c);
                        if code == 0 {
                            calls
                                .lock()
                                .unwrap()
                                .push((path, serde_json::from_slice(&body).unwrap_or_default()));
                        }
                        format!(r#"{{"errcode":{code},"errmsg":"told so"}}"#)
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, calls, answers)
}
