//! What a project may ask each upload to render: at most 32 variants, at most 50 MP each when
//! both sides are set. Refusals are 400 `validation_failed` naming the field. On both databases.

use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests};

db_tests!(variant_count_and_pixels_are_capped);

fn variant(name: &str, width: u32, height: u32) -> Value {
    json!({"name": name, "width": width, "height": height, "fit": "cover", "format": "webp", "quality": 80})
}

async fn variant_count_and_pixels_are_capped(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let path = format!("/projects/{}", t.project_id);
    let (app, path, token) = (&app, &path, &t.token);
    let put = move |settings: Value| {
        let body = json!({"settings": settings});
        async move { app.put_json(path, Some(token), &body).await }
    };

    let too_many: Vec<Value> = (0..33).map(|i| variant(&format!("v{i}"), 100, 100)).collect();
    let message = assert_error(put(json!({"variants": too_many})).await, 400, "validation_failed").await;
    assert!(message.starts_with("settings.variants: "), "{message}");
    let created = app
        .post_json("/projects", Some(&t.token), &json!({"name": "many", "settings": {"variants": (0..33).map(|i| variant(&format!("v{i}"), 10, 10)).collect::<Vec<_>>()}}))
        .await;
    let message = assert_error(created, 400, "validation_failed").await;
    assert!(message.starts_with("settings.variants: "), "{message}");

    // 8192 x 8192 (67 MP) passes each side's range but not the pixel cap.
    let mut huge: Vec<Value> = (0..3).map(|i| variant(&format!("v{i}"), 100, 100)).collect();
    huge.push(variant("poster", 8192, 8192));
    let message = assert_error(put(json!({"variants": huge})).await, 400, "validation_failed").await;
    assert!(message.starts_with("settings.variants[3].width: "), "{message}");
    assert!(message.contains("50000000"), "{message}");

    // At the caps: accepted, and the project keeps them.
    let mut at_cap: Vec<Value> = (0..31).map(|i| variant(&format!("v{i}"), 100, 100)).collect();
    at_cap.push(variant("poster", 8192, 6103));
    let response = put(json!({"variants": at_cap})).await;
    assert_eq!(response.status(), 200);
    let project: Value = response.json().await.expect("json");
    assert_eq!(project["settings"]["variants"].as_array().map(Vec::len), Some(32));
    assert_eq!(project["settings"]["variants"][31]["height"], 6103);
}
