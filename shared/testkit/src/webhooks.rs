//! A partner's webhook endpoint in memory: records every webhook and answers with the
//! statuses it is told (then 200).

use crate::interrupt::stop_point;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wxbridge_core::ports::webhook::WebhookSender;
use wxbridge_core::services::webhook::DELIVERY_HEADER;

/// One webhook as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

impl Posted {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The delivery id partners drop repeats by.
    pub fn delivery(&self) -> &str {
        self.header(DELIVERY_HEADER).unwrap_or_default()
    }
}

#[derive(Debug, Default, Clone)]
pub struct RecordingWebhooks {
    answers: Arc<Mutex<VecDeque<Option<u16>>>>,
    posts: Arc<Mutex<Vec<Posted>>>,
    down: Arc<AtomicBool>,
}

impl RecordingWebhooks {
    /// The next webhook is answered `status` (`None`: no answer in time).
    pub fn answer(&self, status: Option<u16>) {
        self.answers.lock().unwrap().push_back(status);
    }

    /// The partner answers nothing at all, until told otherwise.
    pub fn go_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn posts(&self) -> Vec<Posted> {
        self.posts.lock().unwrap().clone()
    }

    /// Every webhook as (delivery id, body).
    pub fn deliveries(&self) -> Vec<(String, serde_json::Value)> {
        self.posts()
            .into_iter()
            .map(|p| (p.delivery().to_owned(), p.body))
            .collect()
    }
}

impl WebhookSender for RecordingWebhooks {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Option<u16> {
        stop_point().await;
        self.posts.lock().unwrap().push(Posted {
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: serde_json::from_slice(&body).unwrap_or_default(),
        });
        stop_point().await;
        if self.down.load(Ordering::SeqCst) {
            return None;
        }
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Some(200))
    }
}
