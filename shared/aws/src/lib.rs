//! The bridge's AWS adapters: the table in DynamoDB (one adapter per port), the queues on
//! SQS, the media bucket on S3, the configuration from Secrets Manager (or a file), and the SDK configuration the
//! functions share.

pub mod config_loader;
pub mod dynamo;
pub mod s3;
pub mod sdk;
pub mod sqs;

pub use config_loader::load_config;
pub use dynamo::{DynamoMediaCache, DynamoNonceStore, DynamoStore, DynamoTokenStore, Table};
pub use s3::S3MediaArchive;
pub use sdk::{https_client, load_sdk_config, required_env, CallBudget};
pub use sqs::{SqsFifoQueue, SqsParking};
