//! Partners' images in memory: a URL answers what it is told, anything else is refused;
//! and the media bucket in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wxbridge_core::model::{Image, ImageType};
use wxbridge_core::ports::media::{ArchiveError, FetchError, ImageSource, MediaArchive};
use wxbridge_core::ports::wechat::Media;

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

/// The media bucket in memory; it can be told to be unreachable.
#[derive(Debug, Default, Clone)]
pub struct MemoryArchive {
    objects: Arc<Mutex<HashMap<String, Media>>>,
    down: Arc<Mutex<bool>>,
}

impl MemoryArchive {
    pub fn object(&self, key: &str) -> Option<Media> {
        self.objects.lock().unwrap().get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// Every request fails while `down`.
    pub fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }

    fn reachable(&self) -> Result<(), ArchiveError> {
        match *self.down.lock().unwrap() {
            true => Err(ArchiveError("memory bucket told to be down".into())),
            false => Ok(()),
        }
    }
}

impl MediaArchive for MemoryArchive {
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        self.reachable()?;
        let media = Media {
            content_type: content_type.to_owned(),
            bytes,
        };
        self.objects.lock().unwrap().insert(key.to_owned(), media);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Media>, ArchiveError> {
        self.reachable()?;
        Ok(self.object(key))
    }
}
