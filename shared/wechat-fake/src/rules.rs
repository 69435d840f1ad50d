//! WeChat's rules for the customer-service conversation, as the fake enforces them: the
//! reply window and its quota, the typing state, subscribe grants, media lifetime, and the
//! errcodes WeChat answers with. Written from the protocol notes
//! (`shared/wechat-protocol.md`) and the official pages they cite, on their own: nothing
//! here comes from the bridge, so the fake can judge the bridge.
//!
//! Every function takes the time (`now_ms`, Unix milliseconds) as an argument, so the rules
//! are plain data in, verdict out.
//!
//! Where the documentation leaves a point open the choice made here is marked **Open
//! point** with the reasoning; the one choice a test may want both ways
//! ([`EntryPolicy`]) is a setting of the fake.

use std::fmt;
use std::str::FromStr;

/// One hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// A user message allows 5 sends (protocol notes §3.2, MP-SEND-GUIDE: 用户发送消息 5 条).
pub const MESSAGE_SENDS: u32 = 5;
/// … within 48 hours of that message (protocol notes §3.2: 下发时限 48 小时).
pub const MESSAGE_WINDOW_MS: i64 = 48 * HOUR_MS;
/// Entering the session (`user_enter_tempsession`) allows 2 sends (protocol notes §3.2:
/// 用户进入客服消息 2 条).
pub const ENTRY_SENDS: u32 = 2;
/// … within 1 minute of entering (protocol notes §3.2: 下发时限 1 分钟).
pub const ENTRY_WINDOW_MS: i64 = 60_000;

/// Typing needs a message exchange with the user in the last 30 seconds (protocol notes
/// §3.3).
pub const TYPING_NEEDS_EXCHANGE_WITHIN_MS: i64 = 30_000;
/// The typing state lasts 15 seconds and cannot be sent again meanwhile (protocol notes
/// §3.3).
pub const TYPING_LASTS_MS: i64 = 15_000;

/// A temporary media id is valid for 3 days (protocol notes §3.4).
pub const MEDIA_LIFETIME_MS: i64 = 72 * HOUR_MS;
/// The image upload limit. **Open point** (protocol notes §3.4, §9): the docs give 2 MB on
/// older pages and 10 MB on newer ones, neither for mini programs; the fake takes the
/// smaller, so that a bridge that passes here passes under either.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The image types an upload may carry (protocol notes §3.4: mini programs upload `image`
/// only; JPEG, PNG and GIF are the image formats WeChat's media API takes).
pub const IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/gif"];

/// WeChat's error answer: HTTP 200 with `{"errcode", "errmsg"}` (protocol notes §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WxError {
    pub errcode: i64,
    pub errmsg: &'static str,
}

impl WxError {
    pub(crate) const fn new(errcode: i64, errmsg: &'static str) -> Self {
        Self { errcode, errmsg }
    }
}

impl fmt::Display for WxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.errcode, self.errmsg)
    }
}

/// The errcodes the fake answers by itself, with WeChat's `errmsg` (protocol notes §3.3,
/// §3.4, §3.5, §4, §5). Others (-1, 40014, …) come only from an injection.
pub mod errcode {
    use super::WxError;

    /// §4.1 / §3.5: an unknown or superseded token ("not latest"), or a wrong AppSecret on
    /// `cgi-bin/token`.
    pub const INVALID_CREDENTIAL: WxError = WxError::new(
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
    /// §4.1: a wrong `cgi-bin/token` secret answers 40001 as well, with its own message.
    pub const INVALID_SECRET_CLASSIC: WxError = WxError::new(40001, "invalid appsecret");
    /// §4.1: `grant_type` other than `client_credential`.
    pub const INVALID_GRANT_TYPE: WxError = WxError::new(40002, "invalid grant_type");
    /// §3.5 / §5: an openid this app has never seen (or an empty one).
    pub const INVALID_OPENID: WxError = WxError::new(40003, "invalid openid");
    /// §3.4: `type` other than `image` on an upload.
    pub const INVALID_MEDIA_TYPE: WxError = WxError::new(40004, "invalid media type");
    /// §3.4: a file that is not a JPEG, PNG or GIF.
    pub const INVALID_FILE_TYPE: WxError = WxError::new(40005, "invalid file type");
    /// §3.4: over [`super::MAX_IMAGE_BYTES`] (sic: WeChat's spelling).
    pub const INVALID_MEDIA_SIZE: WxError = WxError::new(40006, "invalid meida size");
    /// §3.4 / §3.5: a media id that was never issued or whose 3 days ran out.
    pub const INVALID_MEDIA_ID: WxError = WxError::new(40007, "invalid media_id");
    /// §4.1: an AppID the fake does not know.
    pub const INVALID_APPID: WxError = WxError::new(40013, "invalid appid");
    /// §5: a subscribe send without `template_id`.
    pub const INVALID_TEMPLATE_ID: WxError = WxError::new(40037, "invalid template_id");
    /// §4.2: a wrong secret on `stable_token`.
    pub const INVALID_SECRET_STABLE: WxError = WxError::new(40125, "invalid appsecret");
    /// §3.5: no `access_token` in the query.
    pub const TOKEN_MISSING: WxError = WxError::new(41001, "access_token missing");
    /// §3.4: an upload without a `media` part.
    pub const MEDIA_DATA_MISSING: WxError = WxError::new(41005, "media data missing");
    /// §3.5: a token past its lifetime.
    pub const TOKEN_EXPIRED: WxError = WxError::new(42001, "access_token expired");
    /// §5: no unspent subscribe grant for this template.
    pub const USER_REFUSED: WxError = WxError::new(43101, "user refuse to accept the msg");
    /// §3.5 / §4: a daily quota of the API is used up.
    pub const DAILY_QUOTA: WxError = WxError::new(45009, "reach max api daily quota limit");
    /// §3.5 / §4.2: a per-minute quota of the API is used up.
    pub const MINUTE_QUOTA: WxError = WxError::new(
        45011,
        "api minute-quota reach limit  mustslower  retry next minute",
    );
    /// §3.2: outside the reply window.
    pub const OUT_OF_TIME: WxError = WxError::new(
        45015,
        "response out of time limit or subscription is canceled",
    );
    /// §3.2: the window's sends are used up.
    pub const COUNT_USED: WxError = WxError::new(45047, "out of response count limit");
    /// §3.3: `command` other than `Typing` / `CancelTyping`.
    pub const INVALID_COMMAND: WxError = WxError::new(45072, "command invalid");
    /// §3.3: no message exchange with the user in the last 30 seconds.
    pub const NO_RECENT_EXCHANGE: WxError = WxError::new(
        45080,
        "need sending message to user, or recving message from user in the last 30 seconds",
    );
    /// §3.3: already typing (the 15 seconds are not over).
    pub const ALREADY_TYPING: WxError = WxError::new(45081, "already typing");
    /// §3.5: a body that is not JSON, or a customer-service message missing its fields.
    pub const DATA_FORMAT: WxError = WxError::new(47001, "data format error");
    /// §5: a subscribe send without `data`.
    pub const DATA_EMPTY: WxError = WxError::new(47003, "argument invalid! data is empty");
}

/// What the user did in WeChat that opens (or renews) the reply window (protocol notes
/// §3.2, §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserAction {
    /// The user sent a message (text, image or mini-program card): 5 sends within 48 hours.
    Message,
    /// The user entered the customer-service session (`Event=user_enter_tempsession`,
    /// pushed when the contact button opens it): 2 sends within 1 minute.
    EnterSession,
}

impl UserAction {
    /// How many sends the action allows (protocol notes §3.2).
    pub fn sends(self) -> u32 {
        match self {
            Self::Message => MESSAGE_SENDS,
            Self::EnterSession => ENTRY_SENDS,
        }
    }

    /// How long the action's window lasts (protocol notes §3.2).
    pub fn lasts_ms(self) -> i64 {
        match self {
            Self::Message => MESSAGE_WINDOW_MS,
            Self::EnterSession => ENTRY_WINDOW_MS,
        }
    }
}

/// What an entry into the session does to a window that is still open.
///
/// **Open point** (protocol notes §3.2): the docs say the quotas do not accumulate and that
/// each qualifying action renews the count and the time limit, written for actions that
/// widen the window. Whether entering (2 sends, 1 minute) narrows a window a user message
/// opened (5 sends, 48 hours) is not said.
///
/// Under either policy a user message always opens 5 sends for 48 hours from now, and an
/// entry with no usable window (none yet, run out, or its sends spent) opens 2 sends for 1
/// minute from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryPolicy {
    /// (default) An entry leaves a window from a user message as it is while that window is
    /// open and has sends left: the same closing time, the same count left. An open window
    /// from an earlier entry is renewed (2 sends, 1 minute from now).
    ///
    /// Where the literal "largest count, longest time" reading of the docs would differ
    /// (1 send left, or under a minute left), this policy keeps the open window unchanged.
    #[default]
    KeepsOpenWindow,
    /// An entry always replaces the window with its own: 2 sends, 1 minute from now, even
    /// when a user message had opened 5 sends for 48 hours.
    Replaces,
}

impl EntryPolicy {
    /// The spelling on the command line: `keep` or `replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeepsOpenWindow => "keep",
            Self::Replaces => "replace",
        }
    }
}

impl FromStr for EntryPolicy {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "keep" => Ok(Self::KeepsOpenWindow),
            "replace" => Ok(Self::Replaces),
            other => Err(format!("entry policy {other:?}: keep or replace")),
        }
    }
}

/// A user's reply window as WeChat keeps it: until when the app may send, how many sends
/// are left, and which action opened it (protocol notes §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub opened_by: UserAction,
    /// Sends are accepted strictly before this instant.
    ///
    /// **Open point**: the docs give a length, not whether its last instant counts; the
    /// fake takes the window as half-open, `[action, action + length)`.
    pub closes_at_ms: i64,
    pub sends_left: u32,
}

impl Window {
    /// The window an action opens on its own: the action's full count and full length,
    /// from now (protocol notes §3.2: quotas do not accumulate, each action resets both).
    pub fn opened(action: UserAction, now_ms: i64) -> Self {
        Self {
            opened_by: action,
            closes_at_ms: now_ms + action.lasts_ms(),
            sends_left: action.sends(),
        }
    }

    /// Whether a send now would be accepted: inside the time and with a send left.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        now_ms < self.closes_at_ms && self.sends_left > 0
    }

    /// The window after `action` (protocol notes §3.2).
    ///
    /// - A user message: 5 sends, 48 hours from now, whatever was there. **Open point**:
    ///   a message while sends remain resets the count to 5; it does not add 5 to what is
    ///   left ("quotas do not accumulate") and it does not keep a smaller count.
    /// - Entering the session: see [`EntryPolicy`].
    pub fn after(
        current: Option<Window>,
        action: UserAction,
        policy: EntryPolicy,
        now_ms: i64,
    ) -> Self {
        match (action, policy, current) {
            (UserAction::EnterSession, EntryPolicy::KeepsOpenWindow, Some(open))
                if open.opened_by == UserAction::Message && open.is_usable(now_ms) =>
            {
                open
            }
            _ => Self::opened(action, now_ms),
        }
    }

    /// Whether a customer-service send is accepted now (protocol notes §3.2): 45015 when
    /// there is no window or its time is over, 45047 when its sends are used up.
    ///
    /// **Open point**: a window both over in time and spent answers 45015 (time is checked
    /// first); only an accepted send spends one ([`Window::spend`]), a refused one does not.
    pub fn check_send(window: Option<&Window>, now_ms: i64) -> Result<(), WxError> {
        match window {
            None => Err(errcode::OUT_OF_TIME),
            Some(w) if now_ms >= w.closes_at_ms => Err(errcode::OUT_OF_TIME),
            Some(w) if w.sends_left == 0 => Err(errcode::COUNT_USED),
            Some(_) => Ok(()),
        }
    }

    /// One accepted send spends one of the window's sends.
    pub fn spend(&mut self) {
        self.sends_left = self.sends_left.saturating_sub(1);
    }

    /// The window runs out now (as if its time had passed).
    pub fn close(&mut self, now_ms: i64) {
        self.closes_at_ms = self.closes_at_ms.min(now_ms);
    }
}

/// What WeChat knows about one user of one app: the window, the last message exchange and
/// the typing state. Openids are per app (protocol notes §6.2: the same person has a
/// different openid per AppID), so the fake keys users by (appid, openid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserState {
    pub window: Option<Window>,
    /// The last message either way: a user message or an accepted customer-service send.
    pub last_exchange_ms: Option<i64>,
    /// Typing is shown until this instant (unless cancelled or ended by a send).
    pub typing_until_ms: Option<i64>,
}

impl UserState {
    /// The user acted (protocol notes §3.2).
    ///
    /// **Open point** (protocol notes §3.3: "a message exchange within the last 30
    /// seconds"): a user message counts as an exchange; entering the session is an event,
    /// not a message, and does not.
    pub fn acts(&mut self, action: UserAction, policy: EntryPolicy, now_ms: i64) {
        self.window = Some(Window::after(self.window, action, policy, now_ms));
        if action == UserAction::Message {
            self.last_exchange_ms = Some(now_ms);
        }
    }

    /// Whether a customer-service send is accepted now ([`Window::check_send`]).
    pub fn check_send(&self, now_ms: i64) -> Result<(), WxError> {
        Window::check_send(self.window.as_ref(), now_ms)
    }

    /// An accepted customer-service send: spends one send, counts as an exchange (protocol
    /// notes §3.3: the exchange goes either way) and ends the typing state (protocol notes
    /// §3.3: "sending a message cancels it").
    pub fn sent(&mut self, now_ms: i64) {
        if let Some(window) = self.window.as_mut() {
            window.spend();
        }
        self.last_exchange_ms = Some(now_ms);
        self.typing_until_ms = None;
    }

    /// `command=Typing` (protocol notes §3.3), in this order:
    /// - the conditions for a customer-service send must hold (45015 / 45047, as a send
    ///   would answer). **Open point**: the docs say typing cannot be sent when the send
    ///   conditions are not met, without naming the errcode; the fake answers the send's;
    /// - a message exchange in the last 30 seconds (45080);
    /// - not already typing: the state lasts 15 seconds (45081).
    ///
    /// Typing spends no send.
    pub fn start_typing(&mut self, now_ms: i64) -> Result<(), WxError> {
        self.check_send(now_ms)?;
        let recent = self
            .last_exchange_ms
            .is_some_and(|at| now_ms - at < TYPING_NEEDS_EXCHANGE_WITHIN_MS);
        if !recent {
            return Err(errcode::NO_RECENT_EXCHANGE);
        }
        if self.typing_until_ms.is_some_and(|until| now_ms < until) {
            return Err(errcode::ALREADY_TYPING);
        }
        self.typing_until_ms = Some(now_ms + TYPING_LASTS_MS);
        Ok(())
    }

    /// `command=CancelTyping`. **Open point**: the docs put no condition on it; the fake
    /// accepts it always (a known user and a valid token suffice), typing or not.
    pub fn cancel_typing(&mut self) {
        self.typing_until_ms = None;
    }
}

/// Subscribe grants of one user for one template (protocol notes §5).
///
/// **Open point** (protocol notes §5, §9: "whether acceptances stack is unverified"): the
/// fake counts them — N acceptances allow N sends — with no expiry (one-time templates
/// have none). A grant does not open the customer-service window, and a subscribe send
/// neither needs nor spends it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants(pub u32);

impl Grants {
    /// The user accepted the pop-up for the template once more.
    pub fn accept(&mut self) {
        self.0 += 1;
    }

    /// A subscribe send spends one acceptance; none left answers 43101.
    pub fn spend(&mut self) -> Result<(), WxError> {
        if self.0 == 0 {
            return Err(errcode::USER_REFUSED);
        }
        self.0 -= 1;
        Ok(())
    }
}

/// Whether an upload is taken (protocol notes §3.4): `type=image` only (40004), a JPEG,
/// PNG or GIF (40005), at most [`MAX_IMAGE_BYTES`] (40006).
pub fn check_upload(
    media_type: Option<&str>,
    content_type: &str,
    size: usize,
) -> Result<(), WxError> {
    if media_type != Some("image") {
        return Err(errcode::INVALID_MEDIA_TYPE);
    }
    if !IMAGE_TYPES.contains(&content_type) {
        return Err(errcode::INVALID_FILE_TYPE);
    }
    if size > MAX_IMAGE_BYTES {
        return Err(errcode::INVALID_MEDIA_SIZE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn windows_are_half_open() {
        let window = Window::opened(UserAction::EnterSession, T);
        assert_eq!(Window::check_send(Some(&window), T + 59_999), Ok(()));
        assert_eq!(
            Window::check_send(Some(&window), T + 60_000),
            Err(errcode::OUT_OF_TIME)
        );
    }

    #[test]
    fn a_window_over_in_time_and_spent_answers_45015() {
        let mut window = Window::opened(UserAction::EnterSession, T);
        window.spend();
        window.spend();
        assert_eq!(
            Window::check_send(Some(&window), T + 1),
            Err(errcode::COUNT_USED)
        );
        assert_eq!(
            Window::check_send(Some(&window), T + ENTRY_WINDOW_MS),
            Err(errcode::OUT_OF_TIME)
        );
    }

    #[test]
    fn under_keep_an_entry_renews_an_open_entry_window_and_replaces_a_spent_message_window() {
        let mut entry = Window::opened(UserAction::EnterSession, T);
        entry.spend();
        let renewed = Window::after(
            Some(entry),
            UserAction::EnterSession,
            EntryPolicy::KeepsOpenWindow,
            T + 30_000,
        );
        assert_eq!(
            renewed,
            Window::opened(UserAction::EnterSession, T + 30_000)
        );

        let mut spent = Window::opened(UserAction::Message, T);
        for _ in 0..MESSAGE_SENDS {
            spent.spend();
        }
        let after = Window::after(
            Some(spent),
            UserAction::EnterSession,
            EntryPolicy::KeepsOpenWindow,
            T + HOUR_MS,
        );
        assert_eq!(after, Window::opened(UserAction::EnterSession, T + HOUR_MS));
    }

    #[test]
    fn entry_policies_spell_keep_and_replace() {
        for policy in [EntryPolicy::KeepsOpenWindow, EntryPolicy::Replaces] {
            assert_eq!(policy.as_str().parse::<EntryPolicy>(), Ok(policy));
        }
        assert!("shrink".parse::<EntryPolicy>().is_err());
        assert_eq!(EntryPolicy::default(), EntryPolicy::KeepsOpenWindow);
    }

    #[test]
    fn uploads_are_checked_type_then_format_then_size() {
        assert_eq!(
            check_upload(Some("voice"), "image/png", 1),
            Err(errcode::INVALID_MEDIA_TYPE)
        );
        assert_eq!(
            check_upload(Some("image"), "image/webp", 1),
            Err(errcode::INVALID_FILE_TYPE)
        );
        assert_eq!(
            check_upload(Some("image"), "image/gif", MAX_IMAGE_BYTES + 1),
            Err(errcode::INVALID_MEDIA_SIZE)
        );
        assert_eq!(
            check_upload(Some("image"), "image/gif", MAX_IMAGE_BYTES),
            Ok(())
        );
    }
}
