//! Typed params (worlds `mbk:plugin@0.2.0` and newer): a plugin's `info()` declares the params it takes,
//! `GET /plugins/{id}` shows the declaration, and `POST`/`PUT /projects` refuse a variant's params
//! that the plugin does not declare or whose value is not of its type (400 naming the param). A
//! component of the frozen world 0.1.0 (`plugins/fixtures/legacy`) still registers and renders,
//! with its params handed over unchecked, and one of the frozen 0.2.0 (`plugins/fixtures/flat`)
//! with its params checked. On both databases.

use mbk_host::db::users::Role;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests, drain, fixture};
use crate::registry::{register, sepia, wasm};

db_tests!(
    declared_params_are_shown_and_enforced,
    a_world_0_1_component_still_renders,
    a_world_0_2_component_still_renders
);

fn legacy() -> Vec<u8> {
    wasm(env!("MBK_TEST_LEGACY_WASM"))
}

/// A component of the frozen world 0.2.0 (`plugins/fixtures/flat`).
fn flat() -> Vec<u8> {
    wasm(env!("MBK_TEST_FLAT_WASM"))
}

fn variant(name: &str, plugin: &str, params: Value) -> Value {
    json!({"name": name, "width": 64, "height": 48, "fit": "cover", "format": "png", "quality": 90,
           "plugin": plugin, "params": params})
}

async fn registered(app: &TestApp, token: &str, wasm: Vec<u8>, name: &str) -> Value {
    let response = register(app, token, Some(wasm), Some(name), Some("1.0.0")).await;
    assert_eq!(response.status(), 201, "register {name}");
    response.json().await.expect("json")
}

/// `POST /projects` with these variants, refused: the message.
async fn refused(app: &TestApp, token: &str, variants: Vec<Value>) -> String {
    let body = json!({"name": "p", "settings": {"variants": variants}});
    assert_error(app.post_json("/projects", Some(token), &body).await, 400, "validation_failed").await
}

async fn declared_params_are_shown_and_enforced(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, ada) = app.user_with_token("ada", Role::Admin).await;

    let sepia = registered(&app, &ada, sepia(), "sepia").await;
    assert_eq!(sepia["world"], "mbk:plugin/plugin@0.3.0");
    let path = format!("/plugins/{}", sepia["id"].as_str().expect("id"));
    let fetched: Value = app.get_as(&path, Some(&ada)).await.json().await.expect("json");
    let params = fetched["params"].as_array().expect("a 0.3.0 plugin's params are a list");
    assert_eq!(params.len(), 1, "{fetched}");
    let strength = &params[0];
    assert_eq!(
        (&strength["name"], &strength["type"], &strength["default"], &strength["min"], &strength["max"]),
        (&json!("strength"), &json!("float"), &json!("1"), &json!(0.0), &json!(1.0)),
        "{fetched}"
    );
    assert_eq!(strength["values"], json!([]));
    assert!(strength["description"].as_str().is_some_and(|d| d.contains("sepia")), "{fetched}");
    // The builtin exports 0.3.0 too and declares that it takes no params.
    let list: Value = app.get_as("/plugins", Some(&ada)).await.json().await.expect("json");
    let builtin = list.as_array().expect("list").iter().find(|p| p["builtin"] == true).expect("the builtin").clone();
    assert_eq!((&builtin["world"], &builtin["params"]), (&json!("mbk:plugin/plugin@0.3.0"), &json!([])));

    // Refused, each naming the param: out of range, not a number, not declared; the builtin's too.
    let cases = [
        (variant("toned", "sepia", json!({"strength": "2"})), "settings.variants[0].params.strength", "at most 1"),
        (variant("toned", "sepia", json!({"strength": "much"})), "settings.variants[0].params.strength", "number"),
        (variant("toned", "sepia", json!({"strenght": "0.5"})), "settings.variants[0].params.strenght", "strength"),
        (variant("plain", "mbk-standard", json!({"sharpen": "1"})), "settings.variants[0].params.sharpen", "no params"),
    ];
    for (bad, field, says) in cases {
        let why = refused(&app, &ada, vec![bad]).await;
        assert!(why.starts_with(field) && why.contains(says), "{why}");
    }
    // The index is the variant's own.
    let why = refused(
        &app,
        &ada,
        vec![variant("plain", "mbk-standard", json!({})), variant("toned", "sepia", json!({"strength": "-0.1"}))],
    )
    .await;
    assert!(why.starts_with("settings.variants[1].params.strength"), "{why}");

    // A good value is taken, on create and on update, and a bad one refused on update as well.
    let body = json!({"name": "p", "settings": {"variants": [variant("toned", "sepia", json!({"strength": "0.5"}))]}});
    let made = app.post_json("/projects", Some(&ada), &body).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let project = format!("/projects/{}", made["id"].as_str().expect("id"));
    let update = |params: Value| json!({"settings": {"variants": [variant("toned", "sepia", params)]}});
    assert_eq!(app.put_json(&project, Some(&ada), &update(json!({"strength": "0"}))).await.status(), 200);
    let why = assert_error(
        app.put_json(&project, Some(&ada), &update(json!({"strength": "1.01"}))).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(why.starts_with("settings.variants[0].params.strength"), "{why}");
    let kept: Value = app.get_as(&project, Some(&ada)).await.json().await.expect("json");
    assert_eq!(kept["settings"]["variants"][0]["params"], json!({"strength": "0"}), "a refused update changes nothing");
}

async fn a_world_0_1_component_still_renders(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, ada) = app.user_with_token("ada", Role::Admin).await;
    let legacy = registered(&app, &ada, legacy(), "legacy").await;
    assert_eq!((&legacy["world"], &legacy["params"]), (&json!("mbk:plugin/plugin@0.1.0"), &json!(null)), "{legacy}");

    // It declares nothing, so any params reach it unchecked (as they did before 0.2.0); the
    // colour variant is the builtin's, for comparison.
    let variants = vec![
        variant("grey", "legacy", json!({"grey": "true", "anything": "goes"})),
        variant("colour", "mbk-standard", json!({})),
    ];
    let body = json!({"name": "p", "settings": {"variants": variants}});
    let made = app.post_json("/projects", Some(&ada), &body).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let (_, key) = app.create_key(&ada, made["id"].as_str().expect("id")).await;
    let file: Value =
        app.upload("/upload/image", &key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    assert_eq!(drain(&app).await, 1);
    let path = format!("/files/{}", file["id"].as_str().expect("id"));
    let file: Value = app.get_with_key(&path, &key).await.json().await.expect("json");
    for (name, plugin) in [("grey", "legacy"), ("colour", "mbk-standard")] {
        let v = &file["variants"][name];
        assert_eq!((&v["status"], &v["width"], &v["height"]), (&json!("ready"), &json!(64), &json!(48)), "{file}");
        assert_eq!(v["plugin"]["name"], plugin, "{file}");
    }
    let mut spreads = Vec::new();
    for name in ["grey", "colour"] {
        let response = app.get_with_key(&format!("{path}/content?variant={name}"), &key).await;
        assert_eq!(response.status(), 200, "{name}");
        let img = image::load_from_memory(&response.bytes().await.expect("bytes")).expect("a PNG").to_rgb8();
        assert_eq!(img.dimensions(), (64, 48));
        // How far the most colourful pixel's channels are apart.
        spreads.push(img.pixels().map(|p| p.0.iter().max().unwrap_or(&0) - p.0.iter().min().unwrap_or(&0)).max());
    }
    assert!(spreads[0].is_some_and(|s| s <= 2), "the 0.1.0 plugin saw its param and rendered grey: {spreads:?}");
    assert!(spreads[1].is_some_and(|s| s > 30), "the photo has colour: {spreads:?}");
}

async fn a_world_0_2_component_still_renders(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, ada) = app.user_with_token("ada", Role::Admin).await;
    let flat = registered(&app, &ada, flat(), "flat").await;
    assert_eq!(flat["world"], "mbk:plugin/plugin@0.2.0", "{flat}");
    assert_eq!(flat["params"][0]["name"], "shade", "{flat}");

    // Its declaration is enforced; a gravity it cannot know of is no error (its crops are its own).
    let why = refused(&app, &ada, vec![variant("flat", "flat", json!({"shade": "300"}))]).await;
    assert!(why.starts_with("settings.variants[0].params.shade"), "{why}");
    let mut flat_variant = variant("flat", "flat", json!({"shade": "200"}));
    flat_variant["gravity"] = json!("attention");
    let body = json!({"name": "p", "settings": {"variants": [flat_variant]}});
    let made = app.post_json("/projects", Some(&ada), &body).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let (_, key) = app.create_key(&ada, made["id"].as_str().expect("id")).await;
    let file: Value =
        app.upload("/upload/image", &key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    drain(&app).await;
    let path = format!("/files/{}", file["id"].as_str().expect("id"));
    let file: Value = app.get_with_key(&path, &key).await.json().await.expect("json");
    let v = &file["variants"]["flat"];
    assert_eq!((&v["status"], &v["plugin"]["name"]), (&json!("ready"), &json!("flat")), "{file}");
    let response = app.get_with_key(&format!("{path}/content?variant=flat"), &key).await;
    let img = image::load_from_memory(&response.bytes().await.expect("bytes")).expect("a PNG").to_rgb8();
    assert_eq!(img.dimensions(), (64, 48));
    assert!(img.pixels().all(|p| p.0 == [200, 200, 200]), "the 0.2.0 plugin read its param");
    // No variant used the builtin, which analysed the image all the same, in a call of its own.
    assert!(file["blurhash"].is_string() && file["metadata"].is_object(), "{file}");
}
