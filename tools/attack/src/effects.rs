//! The run's own honest traffic, followed to its end: users who write (one push sent three
//! times), replies and pushes the attack's requests got accepted, image replies that must
//! end `failed`. Each message must arrive exactly once; the stack's logs must hold no panic.

use crate::callback::SAFE;
use crate::report::{Expect, Report, Tried};
use crate::target::{now_secs, Target};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use wxbridge_devstack::desk::read_log;
use wxbridge_devstack::user::{self, Simulator, UserInput};

const GROUP: &str = "honest traffic";
/// Users who entered from the hotel's page, and texts each writes.
const USERS: usize = 8;
const TEXTS: usize = 2;
/// How long the stack gets to deliver everything (a transient failure backs off 30 s).
const SETTLE: Duration = Duration::from_secs(100);

#[derive(Clone)]
pub struct ControlUser {
    pub openid: String,
    /// The hotel's conversation with the user.
    pub conversation: String,
}

pub struct Control {
    pub channel: String,
    /// Users who entered from the hotel's page and wrote to it.
    pub users: Vec<ControlUser>,
    /// A user who only wrote to the platform (no session-from), bound by it to an app user.
    pub platform_only: ControlUser,
    pub platform_only_app_user: String,
    /// (partner, text): a `message.received` webhook each.
    webhooks: Vec<(String, String)>,
    /// (openid, text): one message each at the WeChat fake.
    sends: Vec<(String, String)>,
    /// (conversation, message id, what): replies that must end `failed`.
    failing: Vec<(String, String, String)>,
}

impl Control {
    pub fn expect_sent(&mut self, openid: &str, text: &str) {
        self.sends.push((openid.to_owned(), text.to_owned()));
    }

    pub fn expect_failed(&mut self, conversation: &str, message_id: &str, what: &str) {
        self.failing.push((
            conversation.to_owned(),
            message_id.to_owned(),
            what.to_owned(),
        ));
    }

    /// The users write (each answered `success`), one push arrives three times, and the
    /// platform binds its user to an app user.
    pub async fn setup(target: &Target, report: &mut Report) -> Result<Self, String> {
        let channel = user::pick_channel(&target.config, Some(SAFE))?;
        let secret = target
            .config
            .session_from_secret
            .clone()
            .ok_or("the stack's configuration has no session_from_secret")?;
        let simulator = |openid: &str| Simulator {
            client: target.client.clone(),
            callback_url: format!("{}/wechat", target.callback_url),
            fake_url: target.stack.wechat_fake_url.clone(),
            channel: channel.clone(),
            openid: openid.to_owned(),
            business_id: None,
        };
        let mut control = Control {
            channel: SAFE.to_owned(),
            users: Vec::new(),
            platform_only: ControlUser {
                openid: format!("oAtk{}p", target.run),
                conversation: String::new(),
            },
            platform_only_app_user: format!("u-atk-{}", target.run),
            webhooks: Vec::new(),
            sends: Vec::new(),
            failing: Vec::new(),
        };
        let answered = |answer: Result<user::Answer, String>, name: String, report: &mut Report| {
            report.add(Tried {
                group: GROUP,
                name,
                expect: Expect::Accepted(200),
                status: answer.ok().map(|a| a.status),
                code: None,
            })
        };
        for n in 0..USERS {
            let openid = format!("oAtk{}u{n}", target.run);
            let user = simulator(&openid);
            let session_from = user::signed_session_from(
                &secret,
                "hotel-9",
                None,
                &openid,
                Some("42"),
                now_secs(),
            );
            answered(
                user.act(&UserInput::Enter { session_from }).await,
                format!("user {n} enters from the hotel's page"),
                report,
            );
            for k in 0..TEXTS {
                let text = format!("honest {n}.{k} {}", target.run);
                answered(
                    user.act(&UserInput::Text(text.clone())).await,
                    format!("user {n} writes {k}"),
                    report,
                );
                control.webhooks.push(("hotel-9".into(), text));
            }
            control.users.push(ControlUser {
                conversation: format!("{SAFE}:{openid}:hotel-9"),
                openid,
            });
        }
        // WeChat sends a push again when it gets no answer in time: the same push, thrice.
        let text = format!("sent thrice {}", target.run);
        let event = user::event(
            &channel,
            &control.users[0].openid,
            &UserInput::Text(text.clone()),
            now_secs(),
        );
        let push = user::push(&channel, &event, now_secs());
        for n in 1..=3 {
            let answer = target
                .push(
                    reqwest::Method::POST,
                    &format!("/wechat/{SAFE}"),
                    &push.query_string(),
                    "application/json",
                    push.body.clone(),
                )
                .await;
            report.add(answer.tried(
                GROUP,
                format!("one push, sent {n} times"),
                Expect::Accepted(200),
            ));
        }
        control.webhooks.push(("hotel-9".into(), text));
        // The platform's own user: routed to the default partner, then bound by it.
        let stranger = simulator(&control.platform_only.openid);
        let text = format!("to the platform {}", target.run);
        answered(
            stranger.act(&UserInput::Text(text.clone())).await,
            "a user writes to the platform".into(),
            report,
        );
        control.webhooks.push(("platform".into(), text.clone()));
        control.platform_only.conversation =
            format!("{SAFE}:{}:platform", control.platform_only.openid);
        control.wait_for_webhook(target, "platform", &text).await;
        let binding = target
            .api(
                "platform",
                "PUT",
                &format!("/v1/bindings/{SAFE}/{}", control.platform_only.openid),
                &json!({"app_user_id": control.platform_only_app_user}).to_string(),
            )
            .await;
        report.add(binding.tried(GROUP, "the platform binds its user", Expect::Accepted(200)));
        Ok(control)
    }

    async fn wait_for_webhook(&self, target: &Target, partner: &str, text: &str) {
        let started = Instant::now();
        while started.elapsed() < SETTLE && deliveries(target, partner, text) == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits until everything arrived (or the time is up), then counts what was lost or
    /// arrived twice, the image replies that did not fail, and the panics in the logs.
    pub async fn check(&self, target: &Target, report: &mut Report) {
        let started = Instant::now();
        let (mut webhooks, mut sends, mut failing);
        loop {
            webhooks = self
                .webhooks
                .iter()
                .map(|(partner, text)| {
                    (
                        format!("{partner} got \"{text}\""),
                        deliveries(target, partner, text),
                    )
                })
                .collect::<Vec<_>>();
            sends = Vec::new();
            for (openid, text) in &self.sends {
                sends.push((
                    format!("{openid} got \"{text}\""),
                    received(target, openid, text).await,
                ));
            }
            failing = Vec::new();
            for (conversation, message_id, what) in &self.failing {
                failing.push((what.clone(), status(target, conversation, message_id).await));
            }
            let all_arrived = webhooks.iter().chain(&sends).all(|(_, n)| *n >= 1);
            let all_settled = failing.iter().all(|(_, s)| s != "queued" && s != "sending");
            if (all_arrived && all_settled) || started.elapsed() > SETTLE {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let effects = &mut report.effects;
        effects.checked = webhooks.len() + sends.len() + failing.len();
        for (what, count) in webhooks.iter().chain(&sends) {
            match count {
                0 => effects.lost.push(what.clone()),
                1 => {}
                n => effects.duplicated.push(format!("{what} ×{n}")),
            }
        }
        for (url, status) in failing {
            if status != "failed" && status != "sent" {
                report
                    .effects
                    .lost
                    .push(format!("the image reply from {url} is still {status}"));
            }
            report.add(Tried {
                group: "api: image URLs inside",
                name: format!("{url} ends failed (it is {status})"),
                expect: Expect::Refused(400, None),
                status: Some(if status == "sent" { 200 } else { 400 }),
                code: None,
            });
        }
        report.effects.panics = panics(target);
    }
}

/// Distinct `message.received` deliveries to `partner` whose message holds `text`.
fn deliveries(target: &Target, partner: &str, text: &str) -> usize {
    read_log(&target.stack.desk_log)
        .iter()
        .filter(|w| w.verified && w.partner == partner && w.event == "message.received")
        .filter(|w| w.body.to_string().contains(text))
        .map(|w| w.delivery.clone())
        .collect::<BTreeSet<_>>()
        .len()
}

/// Messages the WeChat fake accepted for `openid` that hold `text`.
async fn received(target: &Target, openid: &str, text: &str) -> usize {
    let Ok(channel) = user::pick_channel(&target.config, Some(SAFE)) else {
        return 0;
    };
    let answer = target
        .client
        .get(format!("{}/_fake/sent", target.stack.wechat_fake_url))
        .query(&[("appid", channel.app_id.as_str()), ("touser", openid)])
        .send()
        .await;
    let Ok(answer) = answer else { return 0 };
    let sent: Value = answer.json().await.unwrap_or_default();
    sent["sent"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|s| s["body"].to_string().contains(text))
                .count()
        })
        .unwrap_or(0)
}

/// A message's status as the hotel's history shows it.
async fn status(target: &Target, conversation: &str, message_id: &str) -> String {
    let answer = target
        .api(
            "hotel-9",
            "GET",
            &format!("/v1/conversations/{conversation}/messages?limit=100"),
            "",
        )
        .await;
    answer.body["messages"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["id"] == message_id))
        .and_then(|m| m["status"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

/// `panicked at` lines in the logs of the stack's state directory.
fn panics(target: &Target) -> usize {
    let Some(dir) = target.stack.desk_log.parent() else {
        return 0;
    };
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "log"))
        .map(|entry| {
            std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .matches("panicked at")
                .count()
        })
        .sum()
}
