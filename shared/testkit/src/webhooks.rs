//! A partner's webhook endpoint in memory: records every webhook and takes it as it is
//! told (a retry, a refusal), then delivered. What an HTTP answer means is the HTTP
//! adapter's (`wxbridge_http::webhooks::classify`).

use crate::interrupt::stop_point;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wxbridge_core::ports::webhook::{Delivery, WebhookSender};
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
    answers: Arc<Mutex<VecDeque<Delivery>>>,
    posts: Arc<Mutex<Vec<Posted>>>,
    down: Arc<AtomicBool>,
}

impl RecordingWebhooks {
    /// The next webhook ends so.
    pub fn answer(&self, delivery: Delivery) {
        self.answers.lock().unwrap().push_back(delivery);
    }

    /// The partner does not take the next webhook now (busy, or no answer in time).
    pub fn not_now(&self) {
        self.answer(Delivery::Retry("the partner did not take it".into()));
    }

    /// The partner refuses the next webhook for good, with `status`.
    pub fn refuse(&self, status: u16) {
        self.answer(Delivery::Refused(status));
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
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Delivery {
        stop_point().await;
        self.posts.lock().unwrap().push(Posted {
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: serde_json::from_slice(&body).unwrap_or_default(),
        });
        stop_point().await;
        if self.down.load(Ordering::SeqCst) {
            return Delivery::Retry("the partner is down".into());
        }
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Delivery::Delivered)
    }
}
