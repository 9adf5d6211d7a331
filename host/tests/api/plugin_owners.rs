//! Plugin ownership and pins, as two admins, a user and a su see them: an admin's plugin is
//! theirs (nobody else lists, names, replaces or deletes it; another admin's plugin of the same
//! name and version is another plugin), a su's is global; a variant pins `name`, `name@1.2.0`,
//! `name@^1` or `name@~1.2`, validated when the settings are written and shown resolved in the
//! project's answer. On both databases.

use mbk_host::db::users::Role;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests, drain, fixture};
use crate::registry::{hostile, register, sepia};

db_tests!(two_admins_with_one_plugin_name_never_touch_each_other, pins_resolve_and_are_validated);

fn variant(name: &str, plugin: &str) -> Value {
    json!({"name": name, "width": 64, "height": 48, "fit": "cover", "format": "png", "quality": 90, "plugin": plugin})
}

async fn registered(app: &TestApp, token: &str, wasm: Vec<u8>, name: &str, version: &str) -> Value {
    let response = register(app, token, Some(wasm), Some(name), Some(version)).await;
    assert_eq!(response.status(), 201, "register {name} {version}");
    response.json().await.expect("json")
}

/// What `GET /plugins` lists for `token`, as `name@version` (the builtin by its name alone).
async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let list: Value = app.get_as("/plugins", Some(token)).await.json().await.expect("json");
    let label = |p: &Value| match p["builtin"].as_bool() {
        Some(true) => p["name"].as_str().expect("name").to_owned(),
        _ => format!("{}@{}", p["name"].as_str().expect("name"), p["version"].as_str().expect("version")),
    };
    list.as_array().expect("a list").iter().map(label).collect()
}

/// Uploads a photo to `project` (with a new key of `token`'s), runs the queue; the File as then.
async fn rendered_upload(app: &TestApp, token: &str, project: &Value) -> Value {
    let (_, key) = app.create_key(token, project["id"].as_str().expect("id")).await;
    let file: Value =
        app.upload("/upload/image", &key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    assert_eq!(drain(app).await, 1);
    let path = format!("/files/{}", file["id"].as_str().expect("id"));
    app.get_with_key(&path, &key).await.json().await.expect("json")
}

async fn project(app: &TestApp, token: &str, variants: Vec<Value>) -> reqwest::Response {
    let body = json!({"name": "p", "settings": {"variants": variants}});
    app.post_json("/projects", Some(token), &body).await
}

async fn two_admins_with_one_plugin_name_never_touch_each_other(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (ada_id, ada) = app.user_with_token("ada", Role::Admin).await;
    let (_, bob) = app.user_with_token("bob", Role::Admin).await;
    let (_, uma) = app.user_with_token("uma", Role::User).await;

    let adas = registered(&app, &ada, sepia(), "sepia", "1.0.0").await;
    assert_eq!((&adas["visibility"], &adas["owner_id"]), (&json!("owner"), &json!(ada_id.to_string())));
    // Bob takes the same name and version, and a newer one, with other code: his own plugins.
    let bobs = registered(&app, &bob, hostile(), "sepia", "1.0.0").await;
    registered(&app, &bob, hostile(), "sepia", "2.0.0").await;
    assert_error(register(&app, &ada, Some(sepia()), Some("sepia"), Some("1.0.0")).await, 409, "conflict").await;

    assert_eq!(listed(&app, &ada).await, ["mbk-standard", "sepia@1.0.0"]);
    assert_eq!(listed(&app, &bob).await, ["mbk-standard", "sepia@2.0.0", "sepia@1.0.0"]);
    assert_eq!(listed(&app, &uma).await, ["mbk-standard"], "a user sees what their projects may use");
    assert_eq!(listed(&app, &su).await.len(), 4, "su sees every plugin");
    let bobs_path = format!("/plugins/{}", bobs["id"].as_str().expect("id"));
    assert_error(app.get_as(&bobs_path, Some(&ada)).await, 404, "not_found").await;
    assert_eq!(app.get_as(&bobs_path, Some(&su)).await.status(), 200);
    let adas_path = format!("/plugins/{}", adas["id"].as_str().expect("id"));
    let fetched: Value = app.get_as(&adas_path, Some(&ada)).await.json().await.expect("json");
    assert_eq!(fetched["sha256"], adas["sha256"]);

    // Ada's project renders with Ada's sepia, whatever Bob registered after her.
    let made = project(&app, &ada, vec![variant("toned", "sepia")]).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    assert_eq!(made["resolved_plugins"]["toned"]["id"], adas["id"], "{made}");
    let file = rendered_upload(&app, &ada, &made).await;
    let toned = &file["variants"]["toned"];
    assert_eq!(
        (&toned["status"], &toned["width"], &toned["height"]),
        (&json!("ready"), &json!(64), &json!(48)),
        "{file}"
    );

    // Nobody else names, replaces or deletes an admin's plugin.
    let why = assert_error(project(&app, &uma, vec![variant("toned", "sepia")]).await, 400, "validation_failed").await;
    assert!(why.contains("settings.variants[0].plugin") && why.contains("no plugin named \"sepia\""), "{why}");
    assert_error(app.delete_as(&adas_path, Some(&bob)).await, 404, "not_found").await;
    assert_error(app.delete_as(&adas_path, Some(&uma)).await, 403, "forbidden").await;
    // A su's global sepia, newer still, does not shadow Ada's either; Ada's user-less names do.
    registered(&app, &su, hostile(), "sepia", "9.0.0").await;
    let again: Value = app
        .get_as(&format!("/projects/{}", made["id"].as_str().expect("id")), Some(&ada))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["resolved_plugins"]["toned"]["version"], "1.0.0", "{again}");
    // A pin none of Ada's versions meets falls back to the global ones.
    let pinned = project(&app, &ada, vec![variant("toned", "sepia@^9")]).await;
    assert_eq!(pinned.status(), 201);
    let pinned: Value = pinned.json().await.expect("json");
    assert_eq!(pinned["resolved_plugins"]["toned"]["version"], "9.0.0", "{pinned}");
    let pinned_path = format!("/projects/{}", pinned["id"].as_str().expect("id"));
    assert_eq!(app.delete_as(&pinned_path, Some(&ada)).await.status(), 204);
    let umas = project(&app, &uma, vec![variant("toned", "sepia")]).await;
    assert_eq!(umas.status(), 201, "the global one is for everyone");
    let umas: Value = umas.json().await.expect("json");
    assert_eq!(umas["resolved_plugins"]["toned"]["version"], "9.0.0");

    // Bob's own go when he says so (no project of his names them); su may delete anyone's.
    assert_eq!(app.delete_as(&bobs_path, Some(&bob)).await.status(), 204);
    assert_error(app.delete_as(&adas_path, Some(&ada)).await, 409, "conflict").await;
    let adas_project = format!("/projects/{}", made["id"].as_str().expect("id"));
    assert_eq!(app.delete_as(&adas_project, Some(&ada)).await.status(), 204);
    assert_eq!(app.delete_as(&adas_path, Some(&su)).await.status(), 204);
}

async fn pins_resolve_and_are_validated(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (_, uma) = app.user_with_token("uma", Role::User).await;
    // Registered out of semver order: the newest is 1.10.0, the highest 2.0.0.
    for version in ["1.0.0", "2.0.0", "1.2.0", "1.10.0"] {
        registered(&app, &su, sepia(), "sepia", version).await;
    }
    let pins = [("newest", "sepia"), ("exact", "sepia@1.0.0"), ("caret", "sepia@^1"), ("tilde", "sepia@~1.2")];
    let made = project(&app, &uma, pins.iter().map(|(name, plugin)| variant(name, plugin)).collect()).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let resolved = |name: &str| made["resolved_plugins"][name]["version"].as_str().map(str::to_owned);
    assert_eq!(
        ["newest", "exact", "caret", "tilde"].map(resolved),
        [Some("1.10.0".into()), Some("1.0.0".into()), Some("1.10.0".into()), Some("1.2.0".into())],
        "{made}"
    );

    for (plugin, expected) in [
        ("sepia@^3", "no version of plugin \"sepia\" meets ^3"),
        ("sepia@1.2.1", "plugin \"sepia\" has no version \"1.2.1\""),
        ("sepia@^x", "not a semver requirement"),
        ("Sepia", "not a plugin name"),
        ("nope@^1", "no version of plugin \"nope\" meets ^1"),
    ] {
        let refused = project(&app, &uma, vec![variant("v", "mbk-standard"), variant("w", plugin)]).await;
        let why = assert_error(refused, 400, "validation_failed").await;
        assert!(why.contains("settings.variants[1].plugin") && why.contains(expected), "{plugin}: {why}");
    }
    let path = format!("/projects/{}", made["id"].as_str().expect("id"));
    let bad = json!({"settings": {"variants": [variant("caret", "sepia@^7")]}});
    let why = assert_error(app.put_json(&path, Some(&uma), &bad).await, 400, "validation_failed").await;
    assert!(why.contains("settings.variants[0].plugin"), "{why}");

    // A version a pin needs stays; one other versions can stand in for goes, and the
    // references follow.
    let versions: Value = app.get_as("/plugins", Some(&su)).await.json().await.expect("json");
    let id_of = |v: &str| {
        let found = versions.as_array().expect("list").iter().find(|p| p["version"] == v).expect("listed");
        format!("/plugins/{}", found["id"].as_str().expect("id"))
    };
    let why = assert_error(app.delete_as(&id_of("1.0.0"), Some(&su)).await, 409, "conflict").await;
    assert!(why.contains("sepia@1.0.0"), "{why}");
    assert_eq!(app.delete_as(&id_of("1.10.0"), Some(&su)).await.status(), 204);
    let now: Value = app.get_as(&path, Some(&uma)).await.json().await.expect("json");
    assert_eq!(now["resolved_plugins"]["newest"]["version"], "1.2.0", "{now}");
    assert_eq!(now["resolved_plugins"]["caret"]["version"], "1.2.0", "{now}");

    // Every pinned variant renders.
    let file = rendered_upload(&app, &uma, &made).await;
    for (name, _) in pins {
        assert_eq!(file["variants"][name]["status"], "ready", "{name}: {file}");
    }
}
