//! Lambda's SQS event source mapping, emulated once for everything that runs the bridge
//! without Lambda: the integration tests (`tests/`) hand its batches to the handlers in
//! process, and the local stack's `event-source` binary (`tools/devstack`) feeds the
//! functions the local Lambda runner runs. Both therefore see batches shaped, and answers
//! settled, exactly as Lambda shapes and settles them — one place to get that right. It
//! knows nothing of the bridge: any SQS queue, any function.
//!
//! A poll is: [`EventSourceMapping::receive`] one batch (up to the source's `BatchSize`),
//! invoke the function with it (the caller says how: in process, or over HTTP as the local
//! stack's `HttpInvoker` does), and [`EventSourceMapping::settle`] the answer:
//!
//! - a function error (an error answer, a timeout, …): nothing is deleted; the records
//!   come back after the queue's visibility timeout, or the backoff the function set;
//! - with `ReportBatchItemFailures`: every record not listed in `batchItemFailures` is
//!   deleted; an `itemIdentifier` that is empty or not in the batch fails the whole batch;
//! - without it: a successful invocation deletes the whole batch;
//! - no runtime to invoke at all (the local stack still starting): the batch is made
//!   visible again at once rather than after the visibility timeout.
//!
//! Records that keep failing go to the dead-letter queue by SQS itself (the queue's
//! `RedrivePolicy`), as they do in AWS.
//!
//! Two things the local AWS emulator (moto) does differently from SQS are made up for
//! here, so the functions see what Lambda would hand them (docs/local-stack.md, "The
//! emulator's limits"; pinned by scripts/tests/test_emulator.py):
//!
//! - moto hands out the *last* record of a message group first when several of the
//!   group's records become visible together (after a backoff set on each, or the
//!   visibility timeout), and its `SequenceNumber`s are random, so they cannot put a group
//!   back in order. The mapping keeps, for each group, the records it received and did not
//!   delete, in order ([`GroupOrder`]); a record handed out ahead of an earlier one of its
//!   group is returned to the queue at once and the queue received again, which makes
//!   moto hand the group out from its first record. Every batch hands a group's records
//!   over in order.
//! - moto spins through a long poll while every visible record belongs to a group held by
//!   a record in flight, taking the CPU from every other request. The mapping never
//!   long-polls: it receives without a wait and pauses between receives that found
//!   nothing ([`RECEIVE_PAUSE`]).

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most records one SQS receive returns, and so the largest batch the emulation hands
/// over (Lambda can gather more over a batching window; the local stack does not need to).
pub const MAX_BATCH_SIZE: i32 = 10;

/// The pause between two receives that found nothing, while [`EventSourceMapping::receive`]
/// waits for a first record (it never asks the emulator to wait: moto spins through a long
/// poll while a message group is held).
pub const RECEIVE_PAUSE: Duration = Duration::from_millis(200);

/// How many receives in a row may hand a group's records out ahead of an earlier record
/// of the group before the mapping takes that earlier record as gone (deleted by someone
/// else, or moved to the dead-letter queue by SQS's redrive) and hands the group over.
const MAX_RETURNS_IN_A_ROW: u32 = 3;

/// Lambda's own `BatchSize` default for SQS.
fn default_batch_size() -> i32 {
    MAX_BATCH_SIZE
}

/// One SQS event source of a function, as `scripts/local_aws.py functions` prints it from
/// the template.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SqsSource {
    pub queue_url: String,
    pub queue_arn: String,
    #[serde(default = "default_batch_size")]
    pub batch_size: i32,
    #[serde(default)]
    pub report_batch_item_failures: bool,
}

/// One function fed from one queue. Clones share what the mapping knows of the order of
/// the queue's message groups (one mapping per queue, as Lambda has it).
#[derive(Debug, Clone)]
pub struct EventSourceMapping {
    /// The function's name (its binary, as the runner serves it).
    pub function: String,
    pub queue_url: String,
    /// Named in every record (`eventSourceARN`), as Lambda names it.
    pub queue_arn: String,
    /// 1 to [`MAX_BATCH_SIZE`] records per invocation.
    pub batch_size: i32,
    /// The function answers with `batchItemFailures` (`FunctionResponseTypes:
    /// ReportBatchItemFailures`); without it only a function error keeps records.
    pub report_batch_item_failures: bool,
    /// Named in every record (`awsRegion`).
    pub region: String,
    /// The records received and not deleted, in order per group.
    order: Arc<Mutex<GroupOrder>>,
}

/// Why a poll could not do its part with the queue (the emulator restarting, say).
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {queue}: {detail}")]
pub struct QueueError {
    pub operation: &'static str,
    pub queue: String,
    pub detail: String,
}

/// What became of an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function returned this answer (`{}` when it returned nothing).
    Answered(Value),
    /// The function failed: an error answer, `X-Amz-Function-Error`, an unreadable answer,
    /// a timeout. The reason names the kind of failure only, never the records' content.
    FunctionError(String),
    /// Nothing took the invocation (no runtime listening): the reason, for the log.
    Unreachable(String),
}

impl Invocation {
    /// A handler's answer, as the runtime would return it to Lambda.
    pub fn answered(response: &SqsBatchResponse) -> Self {
        Self::Answered(serde_json::to_value(response).expect("a batch response is JSON"))
    }
}

/// What one poll did: how many records it handled and what became of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    pub function: String,
    /// The queue's name, for the log.
    pub queue: String,
    /// How many records the batch had (0: the queue had nothing visible, nothing invoked).
    pub records: usize,
    /// Deleted: the function is done with them.
    pub deleted: usize,
    /// Left on the queue for a retry (after the visibility timeout or the function's own
    /// backoff), or returned to it at once when the runtime was unreachable.
    pub left: usize,
    /// Records the emulator handed out ahead of an earlier record of their group, returned
    /// to the queue before the batch was received again in order (see [`GroupOrder`]).
    pub returned_out_of_order: usize,
    pub outcome: Outcome,
}

/// How the function answered a batch, as the log tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was received, so nothing invoked.
    Empty,
    Answered,
    FunctionError(String),
    /// The runtime was unreachable and the batch went back to the queue at once.
    Returned(String),
}

/// One line per batch, without the records' content: how many, how many done, how many
/// left and why.
impl std::fmt::Display for Polled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (function, queue, records) = (&self.function, &self.queue, self.records);
        write!(f, "[{function}] {records} record(s) from {queue}: ")?;
        if let Outcome::Returned(reason) = &self.outcome {
            write!(f, "cannot invoke ({reason}); batch returned to {queue}")?;
        } else {
            write!(f, "{} done", self.deleted)?;
            if self.left > 0 {
                write!(f, ", {} left for a retry", self.left)?;
            }
            if let Outcome::FunctionError(reason) = &self.outcome {
                write!(f, " (function error: {reason})")?;
            }
        }
        if self.returned_out_of_order > 0 {
            write!(
                f,
                "; first, {} record(s) handed out ahead of their group returned",
                self.returned_out_of_order
            )?;
        }
        Ok(())
    }
}

impl EventSourceMapping {
    /// `function` fed from `source`, its batch size kept to what one receive can return.
    pub fn new(function: &str, source: &SqsSource, region: &str) -> Self {
        Self {
            function: function.to_owned(),
            queue_url: source.queue_url.clone(),
            queue_arn: source.queue_arn.clone(),
            batch_size: source.batch_size.clamp(1, MAX_BATCH_SIZE),
            report_batch_item_failures: source.report_batch_item_failures,
            region: region.to_owned(),
            order: Arc::default(),
        }
    }

    /// The queue's name: the last segment of its URL.
    pub fn queue_name(&self) -> &str {
        self.queue_url.rsplit('/').next().unwrap_or(&self.queue_url)
    }

    /// The line that says what the mapping feeds from where.
    pub fn describe(&self) -> String {
        format!(
            "event source mapping: {} → {} (batch {}{})",
            self.queue_name(),
            self.function,
            self.batch_size,
            if self.report_batch_item_failures {
                ", partial batch failures"
            } else {
                ""
            }
        )
    }

    fn queue_error(&self, operation: &'static str, detail: impl std::fmt::Display) -> QueueError {
        QueueError {
            operation,
            queue: self.queue_name().to_owned(),
            detail: detail.to_string(),
        }
    }

    /// Receives one batch (waiting up to `wait` for a first record) as the event Lambda
    /// hands the function: every system attribute and message attribute, each record
    /// shaped as Lambda shapes it, each message group's records in order. No records when
    /// the queue had nothing visible.
    pub async fn receive(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait: Duration,
    ) -> Result<SqsEvent, QueueError> {
        Ok(self.receive_in_order(sqs, wait).await?.0)
    }

    /// [`Self::receive`], and how many records it returned to the queue for being handed
    /// out ahead of an earlier record of their group.
    async fn receive_in_order(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait: Duration,
    ) -> Result<(SqsEvent, usize), QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut returned_out_of_order = 0;
        loop {
            let records: Vec<SqsMessage> = self
                .receive_now(sqs)
                .await?
                .into_iter()
                .map(|message| self.record(message))
                .collect();
            let Arranged { handed, returned } = self.lock_order().arrange(records);
            if !returned.is_empty() {
                // Visible again at once: the group's earlier records, which the emulator held
                // behind these, come first in the next receive.
                self.change_visibility_to_zero(sqs, &returned).await?;
                returned_out_of_order += returned.len();
            }
            if !handed.is_empty() {
                let mut event = SqsEvent::default();
                event.records = handed;
                return Ok((event, returned_out_of_order));
            }
            if returned.is_empty() {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok((SqsEvent::default(), returned_out_of_order));
                }
                tokio::time::sleep((deadline - now).min(RECEIVE_PAUSE)).await;
            }
        }
    }

    /// One receive that does not wait (see [`RECEIVE_PAUSE`]).
    async fn receive_now(&self, sqs: &aws_sdk_sqs::Client) -> Result<Vec<Message>, QueueError> {
        let received = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| self.queue_error("ReceiveMessage", DisplayErrorContext(e)))?;
        Ok(received.messages.unwrap_or_default())
    }

    fn lock_order(&self) -> std::sync::MutexGuard<'_, GroupOrder> {
        // The order is only ever updated whole, under the lock: a panic elsewhere leaves it
        // usable.
        self.order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A received message as the record of the SQS event Lambda hands a function.
    fn record(&self, message: Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id;
        record.receipt_handle = message.receipt_handle;
        record.body = message.body;
        record.md5_of_body = message.md5_of_body;
        record.md5_of_message_attributes = message.md5_of_message_attributes;
        record.attributes = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_owned(), value))
            .collect();
        record.message_attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let mut attribute = SqsMessageAttribute::default();
                attribute.string_value = value.string_value().map(str::to_owned);
                attribute.binary_value = value.binary_value().map(|blob| {
                    let mut data = Base64Data::default();
                    data.0 = blob.as_ref().to_vec();
                    data
                });
                // Lambda hands the list values over empty: SQS reserves them.
                attribute.data_type = Some(value.data_type().to_owned());
                (name, attribute)
            })
            .collect();
        record.event_source = Some("aws:sqs".to_owned());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }

    /// Settles the function's answer to `event` as Lambda does: deletes what the function
    /// is done with and leaves the rest (see [`failed_ids`]); an unreachable runtime gets
    /// the whole batch back at once.
    pub async fn settle(
        &self,
        sqs: &aws_sdk_sqs::Client,
        event: &SqsEvent,
        invocation: &Invocation,
    ) -> Result<Polled, QueueError> {
        let records = event.records.len();
        let polled = |deleted, left, outcome| Polled {
            function: self.function.clone(),
            queue: self.queue_name().to_owned(),
            records,
            deleted,
            left,
            returned_out_of_order: 0,
            outcome,
        };
        let (answer, outcome) = match invocation {
            Invocation::Unreachable(reason) => {
                self.make_visible(sqs, event).await?;
                return Ok(polled(0, records, Outcome::Returned(reason.clone())));
            }
            Invocation::FunctionError(reason) => (None, Outcome::FunctionError(reason.clone())),
            Invocation::Answered(answer) => (Some(answer), Outcome::Answered),
        };
        let ids: Vec<&str> = event.records.iter().map(message_id).collect();
        let failed = failed_ids(&ids, answer, self.report_batch_item_failures);
        let done: Vec<&SqsMessage> = event
            .records
            .iter()
            .filter(|record| !failed.contains(message_id(record)))
            .collect();
        if !done.is_empty() {
            let entries = done
                .iter()
                .enumerate()
                .map(|(i, record)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt_handle(record))
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let answer = sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.queue_error("DeleteMessageBatch", DisplayErrorContext(e)))?;
            // The deleted records are done with; one the delete refused may come back.
            let refused: HashSet<&str> = answer.failed.iter().map(|f| f.id.as_str()).collect();
            self.lock_order().forget(
                done.iter()
                    .enumerate()
                    .filter(|(i, _)| !refused.contains(i.to_string().as_str()))
                    .map(|(_, record)| message_id(record)),
            );
            if let Some(refused) = answer.failed.first() {
                return Err(self.queue_error(
                    "DeleteMessageBatch",
                    format!(
                        "{} record(s) not deleted: {}",
                        answer.failed.len(),
                        refused.code
                    ),
                ));
            }
        }
        Ok(polled(done.len(), failed.len(), outcome))
    }

    /// One poll: receives a batch (waiting up to `wait`), hands it to `invoke` and settles
    /// what it answers. An empty receive invokes nothing, as Lambda never invokes a
    /// function with no records.
    pub async fn poll<F, Fut>(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait: Duration,
        invoke: F,
    ) -> Result<Polled, QueueError>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = Invocation>,
    {
        let (event, returned_out_of_order) = self.receive_in_order(sqs, wait).await?;
        if event.records.is_empty() {
            return Ok(Polled {
                function: self.function.clone(),
                queue: self.queue_name().to_owned(),
                records: 0,
                deleted: 0,
                left: 0,
                returned_out_of_order,
                outcome: Outcome::Empty,
            });
        }
        let invocation = invoke(event.clone()).await;
        let mut polled = self.settle(sqs, &event, &invocation).await?;
        polled.returned_out_of_order = returned_out_of_order;
        Ok(polled)
    }

    /// Makes every record of `event` visible again at once: for a batch no runtime took,
    /// and for tests standing in for a visibility timeout or a backoff that has elapsed.
    pub async fn make_visible(
        &self,
        sqs: &aws_sdk_sqs::Client,
        event: &SqsEvent,
    ) -> Result<(), QueueError> {
        self.change_visibility_to_zero(sqs, &event.records).await
    }

    async fn change_visibility_to_zero(
        &self,
        sqs: &aws_sdk_sqs::Client,
        records: &[SqsMessage],
    ) -> Result<(), QueueError> {
        if records.is_empty() {
            return Ok(());
        }
        let entries = records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt_handle(record))
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let answer = sqs
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                self.queue_error("ChangeMessageVisibilityBatch", DisplayErrorContext(e))
            })?;
        match answer.failed.first() {
            Some(refused) => Err(self.queue_error(
                "ChangeMessageVisibilityBatch",
                format!(
                    "{} record(s) not returned: {}",
                    answer.failed.len(),
                    refused.code
                ),
            )),
            None => Ok(()),
        }
    }
}

fn message_id(record: &SqsMessage) -> &str {
    record.message_id.as_deref().unwrap_or_default()
}

fn group_id(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

/// The order of a queue's message groups as one mapping has seen them: for each group, the
/// records the mapping received and has not deleted, in the order they were sent.
///
/// The order comes from the batches themselves: SQS hands a group's records out in order,
/// and moto, which walks its queue in the order the messages came, lists a batch in that
/// order too; what it gets wrong is which record of a group it hands out first. (Its
/// `SequenceNumber`s, which SQS makes increase within a group, are random.) A record the
/// mapping has not seen before goes after every record of its group it knows, unless the
/// batch lists it before one of them (records left on the queue before the mapping
/// started).
#[derive(Debug, Default)]
struct GroupOrder {
    /// Group → its undeleted records' message ids, first sent first.
    groups: HashMap<String, Vec<String>>,
    /// Group → how many receives in a row handed its records out ahead of an earlier one.
    returns_in_a_row: HashMap<String, u32>,
}

/// A received batch, arranged.
#[derive(Debug, Default)]
struct Arranged {
    /// To hand to the function, in the order received: each group's records in order.
    handed: Vec<SqsMessage>,
    /// Handed out ahead of an earlier record of their group that is still on the queue: to
    /// return to the queue at once.
    returned: Vec<SqsMessage>,
}

impl GroupOrder {
    /// Arranges a received batch. For each group, the first of its known undeleted records
    /// that the batch lacks is still on the queue: the batch's records of the group that
    /// come after it (known to be later, or not seen before) are split off to be returned,
    /// the ones before it handed over. A group that came out of order more than
    /// [`MAX_RETURNS_IN_A_ROW`] times in a row is handed over as it came, and its missing
    /// earlier records are taken as gone. Records without a group (a standard queue) are
    /// handed over as they came.
    fn arrange(&mut self, records: Vec<SqsMessage>) -> Arranged {
        let mut batch_groups: Vec<String> = Vec::new();
        for group in records.iter().filter_map(group_id) {
            if !batch_groups.iter().any(|g| g == group) {
                batch_groups.push(group.to_owned());
            }
        }
        let mut returned_ids: HashSet<String> = HashSet::new();
        for group in &batch_groups {
            let in_batch: Vec<&str> = records
                .iter()
                .filter(|r| group_id(r) == Some(group.as_str()))
                .map(message_id)
                .collect();
            let known = self.groups.entry(group.clone()).or_default();
            let Some(missing) = known.iter().position(|id| !in_batch.contains(&id.as_str())) else {
                self.returns_in_a_row.remove(group);
                continue;
            };
            // Ahead of the missing record: the batch's records not known to come before it.
            let ahead: Vec<&str> = in_batch
                .iter()
                .filter(|id| !known[..missing].iter().any(|k| k == *id))
                .copied()
                .collect();
            if ahead.is_empty() {
                self.returns_in_a_row.remove(group);
                continue;
            }
            let returns = self.returns_in_a_row.entry(group.clone()).or_insert(0);
            *returns += 1;
            if *returns > MAX_RETURNS_IN_A_ROW {
                // The earlier records never came: gone. The group is handed over as it came.
                self.returns_in_a_row.remove(group);
                let first_here = known.iter().position(|id| in_batch.contains(&id.as_str()));
                let upto = first_here.unwrap_or(known.len());
                let mut i = 0;
                known.retain(|id| {
                    i += 1;
                    i > upto || in_batch.contains(&id.as_str())
                });
            } else {
                returned_ids.extend(ahead.iter().map(|id| (*id).to_owned()));
            }
        }
        let mut arranged = Arranged::default();
        for record in records {
            if returned_ids.contains(message_id(&record)) {
                arranged.returned.push(record);
            } else {
                arranged.handed.push(record);
            }
        }
        for group in &batch_groups {
            let handed: Vec<&str> = arranged
                .handed
                .iter()
                .filter(|r| group_id(r) == Some(group.as_str()))
                .map(message_id)
                .collect();
            self.learn(group, &handed);
        }
        arranged
    }

    /// Adds a group's handed records the mapping has not seen before to what it knows, in
    /// the order the batch lists them: each before the next known record the batch lists
    /// after it, or last.
    fn learn(&mut self, group: &str, handed: &[&str]) {
        let known = self.groups.entry(group.to_owned()).or_default();
        for (i, id) in handed.iter().enumerate() {
            if known.iter().any(|k| k == id) {
                continue;
            }
            let next_known = handed[i + 1..]
                .iter()
                .find_map(|later| known.iter().position(|k| k == later));
            known.insert(next_known.unwrap_or(known.len()), (*id).to_owned());
        }
    }

    /// The records deleted: done with.
    fn forget<'a>(&mut self, deleted: impl Iterator<Item = &'a str>) {
        let deleted: HashSet<&str> = deleted.collect();
        self.groups.retain(|_, known| {
            known.retain(|id| !deleted.contains(id.as_str()));
            !known.is_empty()
        });
    }
}

fn receipt_handle(record: &SqsMessage) -> String {
    record.receipt_handle.clone().unwrap_or_default()
}

/// The message ids Lambda leaves on the queue, given the function's `answer` to a batch of
/// `batch_ids` (`None` for a function error, which leaves the whole batch).
///
/// With `report_batch_item_failures`, the records listed in `batchItemFailures` are left
/// and the rest deleted; a list Lambda cannot take at its word (an `itemIdentifier` empty,
/// missing, or not in the batch, or `batchItemFailures` not a list) fails the whole batch,
/// as Lambda does, so no record is deleted that the function did not finish. An answer
/// without the list (or not an object) fails nothing. Without the setting, any answer
/// deletes the whole batch.
pub fn failed_ids(
    batch_ids: &[&str],
    answer: Option<&Value>,
    report_batch_item_failures: bool,
) -> BTreeSet<String> {
    let whole_batch = || batch_ids.iter().map(|id| (*id).to_owned()).collect();
    let Some(answer) = answer else {
        return whole_batch();
    };
    if !report_batch_item_failures {
        return BTreeSet::new();
    }
    let failures = match answer.get("batchItemFailures") {
        None | Some(Value::Null) => return BTreeSet::new(),
        Some(Value::Array(failures)) => failures,
        Some(_) => return whole_batch(),
    };
    let mut failed = BTreeSet::new();
    for failure in failures {
        match failure.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && batch_ids.contains(&id) => {
                failed.insert(id.to_owned());
            }
            _ => return whole_batch(),
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn what_lambda_leaves_on_the_queue() {
        let ids = ["m1", "m2", "m3"];
        let all = set(&ids);
        let failures = |list: Value| json!({ "batchItemFailures": list });
        assert_eq!(failed_ids(&ids, None, true), all, "a function error");
        assert_eq!(failed_ids(&ids, None, false), all, "a function error");
        assert_eq!(failed_ids(&ids, Some(&json!({})), true), set(&[]));
        assert_eq!(failed_ids(&ids, Some(&failures(json!([]))), true), set(&[]));
        assert_eq!(
            failed_ids(&ids, Some(&failures(Value::Null)), true),
            set(&[])
        );
        assert_eq!(
            failed_ids(
                &ids,
                Some(&failures(json!([{"itemIdentifier": "m2"}]))),
                true
            ),
            set(&["m2"])
        );
        assert_eq!(
            failed_ids(&ids, Some(&failures(json!([{"itemIdentifier": ""}]))), true),
            all,
            "an empty itemIdentifier"
        );
        assert_eq!(
            failed_ids(&ids, Some(&failures(json!([{"nope": 1}]))), true),
            all,
            "no itemIdentifier"
        );
        assert_eq!(
            failed_ids(
                &ids,
                Some(&failures(
                    json!([{"itemIdentifier": "m2"}, {"itemIdentifier": "elsewhere"}])
                )),
                true
            ),
            all,
            "an itemIdentifier not in the batch"
        );
        assert_eq!(
            failed_ids(&ids, Some(&failures(json!("m2"))), true),
            all,
            "not a list"
        );
        assert_eq!(
            failed_ids(
                &ids,
                Some(&failures(json!([{"itemIdentifier": "m2"}]))),
                false
            ),
            set(&[]),
            "without ReportBatchItemFailures"
        );
    }

    #[test]
    fn a_handlers_answer_is_read_as_lambda_reads_the_runtimes() {
        let mut response = SqsBatchResponse::default();
        response.add_failure("m2");
        let Invocation::Answered(answer) = Invocation::answered(&response) else {
            panic!("an answer");
        };
        assert_eq!(failed_ids(&["m1", "m2"], Some(&answer), true), set(&["m2"]));
    }

    fn mapping(batch_size: i32, report: bool) -> EventSourceMapping {
        let source = SqsSource {
            queue_url: "http://127.0.0.1:5000/123456789012/s-inbound.fifo".into(),
            queue_arn: "arn:aws:sqs:us-east-1:123456789012:s-inbound.fifo".into(),
            batch_size,
            report_batch_item_failures: report,
        };
        EventSourceMapping::new("inbound", &source, "us-east-1")
    }

    #[test]
    fn the_batch_size_is_kept_to_what_one_receive_returns() {
        assert_eq!(mapping(25, true).batch_size, 10);
        assert_eq!(mapping(0, true).batch_size, 1);
        assert_eq!(mapping(5, true).batch_size, 5);
    }

    #[test]
    fn the_start_line_names_queue_function_batch_and_partial_failures() {
        assert_eq!(
            mapping(10, true).describe(),
            "event source mapping: s-inbound.fifo → inbound (batch 10, partial batch failures)"
        );
        assert_eq!(
            mapping(5, false).describe(),
            "event source mapping: s-inbound.fifo → inbound (batch 5)"
        );
    }

    #[test]
    fn one_line_per_batch_says_what_became_of_it() {
        let polled = |deleted, left, outcome| Polled {
            function: "inbound".into(),
            queue: "s-inbound.fifo".into(),
            records: 3,
            deleted,
            left,
            returned_out_of_order: 0,
            outcome,
        };
        assert_eq!(
            polled(3, 0, Outcome::Answered).to_string(),
            "[inbound] 3 record(s) from s-inbound.fifo: 3 done"
        );
        assert_eq!(
            polled(2, 1, Outcome::Answered).to_string(),
            "[inbound] 3 record(s) from s-inbound.fifo: 2 done, 1 left for a retry"
        );
        assert_eq!(
            polled(0, 3, Outcome::FunctionError("HTTP 500".into())).to_string(),
            "[inbound] 3 record(s) from s-inbound.fifo: 0 done, 3 left for a retry (function error: HTTP 500)"
        );
        assert_eq!(
            polled(0, 3, Outcome::Returned("connection refused".into())).to_string(),
            "[inbound] 3 record(s) from s-inbound.fifo: cannot invoke (connection refused); batch returned to s-inbound.fifo"
        );
        let reordered = Polled {
            returned_out_of_order: 1,
            ..polled(3, 0, Outcome::Answered)
        };
        assert_eq!(
            reordered.to_string(),
            "[inbound] 3 record(s) from s-inbound.fifo: 3 done; first, 1 record(s) handed out ahead of their group returned"
        );
    }

    /// A record as received: its id (its body too) and, on a FIFO queue, its group.
    fn received(id: &str, group: Option<&str>) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.body = Some(id.to_owned());
        if let Some(group) = group {
            record
                .attributes
                .insert("MessageGroupId".into(), group.to_owned());
        }
        record
    }

    fn batch(ids: &[&str]) -> Vec<SqsMessage> {
        // "a0" is of group "a", "b3" of group "b".
        ids.iter().map(|id| received(id, Some(&id[..1]))).collect()
    }

    fn ids(records: &[SqsMessage]) -> Vec<&str> {
        records.iter().map(message_id).collect()
    }

    #[test]
    fn a_group_handed_out_from_its_last_record_is_returned_until_it_comes_in_order() {
        let mut order = GroupOrder::default();
        let first = order.arrange(batch(&["a0", "b0", "a1", "a2", "a3"]));
        assert_eq!(ids(&first.handed), ["a0", "b0", "a1", "a2", "a3"]);
        assert!(first.returned.is_empty());
        order.forget(["b0"].into_iter());
        // All of a's records left; the emulator hands out the last one alone.
        let second = order.arrange(batch(&["a3", "b1"]));
        assert_eq!(ids(&second.handed), ["b1"], "b is in order");
        assert_eq!(ids(&second.returned), ["a3"]);
        // Returned, a3 comes back behind the rest of its group.
        let third = order.arrange(batch(&["a0", "a1", "a2", "a3"]));
        assert_eq!(ids(&third.handed), ["a0", "a1", "a2", "a3"]);
        assert!(third.returned.is_empty());
    }

    #[test]
    fn a_batch_keeps_a_group_up_to_its_first_missing_record() {
        let mut order = GroupOrder::default();
        order.arrange(batch(&["a0", "a1", "a2", "a3"]));
        order.forget(["a0"].into_iter());
        let arranged = order.arrange(batch(&["a1", "a3", "a4"]));
        assert_eq!(ids(&arranged.handed), ["a1"]);
        assert_eq!(ids(&arranged.returned), ["a3", "a4"], "a2 comes first");
    }

    #[test]
    fn records_left_before_the_mapping_started_take_their_place_from_the_batch() {
        let mut order = GroupOrder::default();
        // a0…a2 were left by an earlier mapping; this one has seen a3 and a4 only.
        order.arrange(batch(&["a3", "a4"]));
        assert_eq!(ids(&order.arrange(batch(&["a4"])).returned), ["a4"]);
        let arranged = order.arrange(batch(&["a0", "a1", "a2", "a3", "a4"]));
        assert_eq!(ids(&arranged.handed), ["a0", "a1", "a2", "a3", "a4"]);
        assert_eq!(order.groups["a"], ["a0", "a1", "a2", "a3", "a4"]);
        // A new record of the group goes after every one known.
        order.forget(["a0", "a1", "a3"].into_iter());
        let arranged = order.arrange(batch(&["a2", "a4", "a5"]));
        assert_eq!(ids(&arranged.handed), ["a2", "a4", "a5"]);
        assert_eq!(order.groups["a"], ["a2", "a4", "a5"]);
        // While a record of the group is left, a new one handed out alone is ahead of it.
        assert_eq!(ids(&order.arrange(batch(&["a6"])).returned), ["a6"]);
    }

    #[test]
    fn earlier_records_that_never_come_are_taken_as_gone() {
        let mut order = GroupOrder::default();
        order.arrange(batch(&["a0", "a1"]));
        // a0 moved to the dead-letter queue by SQS's redrive: only a1 ever comes back.
        for _ in 0..MAX_RETURNS_IN_A_ROW {
            assert_eq!(ids(&order.arrange(batch(&["a1"])).returned), ["a1"]);
        }
        let arranged = order.arrange(batch(&["a1"]));
        assert_eq!(ids(&arranged.handed), ["a1"]);
        assert_eq!(order.groups["a"], ["a1"], "a0 forgotten");
        assert_eq!(
            ids(&order.arrange(batch(&["a1", "a2"])).handed),
            ["a1", "a2"]
        );
    }

    #[test]
    fn deleted_records_are_forgotten_and_records_without_a_group_go_as_they_came() {
        let mut order = GroupOrder::default();
        order.arrange(batch(&["a0", "a1"]));
        order.forget(["a0", "a1"].into_iter());
        assert!(order.groups.is_empty());
        let standard = vec![received("x", None), received("y", None)];
        let arranged = order.arrange(standard);
        assert_eq!(ids(&arranged.handed), ["x", "y"]);
        assert!(
            order.groups.is_empty(),
            "nothing to keep for a standard queue"
        );
    }
}
