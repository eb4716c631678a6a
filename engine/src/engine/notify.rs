//! Notifications are written in the same transaction as the change they report, so a crash
//! can never record a change without its notice or a notice without its change.

use crate::domain::*;
use crate::ids::*;
use crate::store::{StoreError, Writer};

pub(crate) fn notify(
    w: &mut Writer<'_>,
    user: UserId,
    kind: NotificationType,
    title: impl Into<String>,
    message: impl Into<String>,
    link: Option<Link>,
    metadata: serde_json::Value,
) -> Result<Notification, StoreError> {
    let n = Notification {
        id: NotificationId::new(),
        user_id: user,
        kind,
        title: title.into(),
        message: message.into(),
        priority: kind.default_priority(),
        read: false,
        link,
        metadata: JsonValue(metadata),
        created_at: now(),
    };
    w.put(&n)?;
    Ok(n)
}
