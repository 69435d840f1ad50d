//! Partners' images in memory: a URL answers what it is told, anything else is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wxbridge_core::model::{Image, ImageType};
use wxbridge_core::ports::media::{FetchError, ImageSource};

#[derive(Debug, Default, Clone)]
pub struct MemoryImages {
    answers: Arc<Mutex<HashMap<String, Result<Image, FetchError>>>>,
    fetches: Arc<Mutex<Vec<String>>>,
}

impl MemoryImages {
    /// `url` answers `bytes`, which must be a JPEG, PNG or GIF.
    pub fn serve(&self, url: &str, bytes: &[u8]) {
        let kind = ImageType::sniff(bytes).expect("an image the bridge takes");
        let image = Image {
            bytes: bytes.to_vec(),
            kind,
        };
        self.answers
            .lock()
            .unwrap()
            .insert(url.to_owned(), Ok(image));
    }

    /// `url` fails so.
    pub fn fail(&self, url: &str, error: FetchError) {
        self.answers
            .lock()
            .unwrap()
            .insert(url.to_owned(), Err(error));
    }

    /// Every URL fetched, in order.
    pub fn fetches(&self) -> Vec<String> {
        self.fetches.lock().unwrap().clone()
    }
}

impl ImageSource for MemoryImages {
    async fn fetch(&self, url: &str) -> Result<Image, FetchError> {
        self.fetches.lock().unwrap().push(url.to_owned());
        self.answers
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .unwrap_or_else(|| {
                Err(FetchError::Refused(
                    "the image URL answered HTTP 404".into(),
                ))
            })
    }
}
