//! The bucket image messages' copies are kept in, on Amazon S3 ([`MediaArchive`]).
//!
//! Objects are written with their content type; the bucket's own settings (template.yaml)
//! encrypt them, block public access and expire them after the retention configured.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;
use wxbridge_core::ports::media::{ArchiveError, MediaArchive};
use wxbridge_core::ports::wechat::Media;

/// An image of a few MB takes longer than a DynamoDB item: one attempt may take 5 s, all
/// attempts 15 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct S3MediaArchive {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3MediaArchive {
    /// The bucket `bucket` through the shared SDK configuration. With an endpoint of its own
    /// (`AWS_ENDPOINT_URL`, the local emulator) buckets are addressed by path, as emulators
    /// expect.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self::from_client(aws_sdk_s3::Client::from_conf(config), bucket)
    }

    /// The bucket `bucket` through a client of the caller's (tests count its requests).
    pub fn from_client(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

fn unavailable<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: SdkError<E, HttpResponse>,
) -> ArchiveError {
    let code = error.code().unwrap_or("no answer").to_owned();
    let message = error.message().map(str::to_owned);
    ArchiveError(match message {
        Some(message) => format!("{code}: {message}"),
        None => format!("{code}: {}", DisplayErrorContext(&error)),
    })
}

impl MediaArchive for S3MediaArchive {
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Media>, ArchiveError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(error) => return Err(unavailable(error)),
        };
        let content_type = output
            .content_type
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| ArchiveError(format!("reading the object: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(Media {
            content_type,
            bytes,
        }))
    }
}
