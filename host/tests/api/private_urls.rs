//! Private projects (`settings.visibility: "private"`): every URL in a File answer is signed and
//! expires after `url_ttl_seconds` (filesystem: `/blobs/{key}?exp=…&sig=…`, HMAC-SHA256; S3: a
//! presigned GET), and `GET /blobs` refuses a private project's blob without a valid signature
//! (403 `forbidden`), from the moment the project is switched; and `GET /v/{file_id}/{variant}`,
//! the same rules for a variant named by its file. On both databases and stores.

use mbk_host::delivery::signing::{UrlSigner, query_value};
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TEST_JWT_SECRET, Tenant, TestApp, assert_error, drain, fixture, matrix_tests};

matrix_tests!(private_projects_sign_their_urls_and_refuse_unsigned_ones, variants_are_delivered_by_file_and_name);

fn settings(visibility: &str, ttl: u32) -> Value {
    json!({"variants": [{"name": "thumb", "width": 64, "height": 48, "fit": "cover", "format": "png", "quality": 90}],
           "visibility": visibility, "url_ttl_seconds": ttl})
}

/// The thumbnail's URL in the file's answer now.
async fn thumb_url(app: &TestApp, key: &str, file_id: &str) -> String {
    let file: Value = app.get_with_key(&format!("/files/{file_id}"), key).await.json().await.expect("json");
    assert_eq!(file["variants"]["thumb"]["status"], "ready", "{file}");
    file["variants"]["thumb"]["url"].as_str().expect("url").to_owned()
}

/// The URL with its `sig` changed in one character.
fn tampered(url: &str) -> String {
    let (head, sig) = url.rsplit_once("sig=").map_or((url, ""), |(h, s)| (h, s));
    let mut sig: Vec<char> = sig.chars().collect();
    if let Some(first) = sig.first_mut() {
        *first = if *first == 'A' { 'B' } else { 'A' };
    }
    format!("{head}sig={}", sig.into_iter().collect::<String>())
}

/// A public project with one rendered upload: the app, the tenant, the file's id.
async fn rendered_upload(db: DbKind, store: StoreKind) -> (TestApp, Tenant, String) {
    let app = TestApp::spawn(db, store).await;
    let tenant = app.project_with_key(settings("public", 3600)).await;
    let file: Value =
        app.upload("/upload/image", &tenant.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    assert_eq!(drain(&app).await, 1);
    let file_id = file["id"].as_str().expect("id").to_owned();
    (app, tenant, file_id)
}

async fn private_projects_sign_their_urls_and_refuse_unsigned_ones(db: DbKind, store: StoreKind) {
    let (app, tenant, file_id) = rendered_upload(db, store).await;
    let public_url = thumb_url(&app, &tenant.key, &file_id).await;
    assert!(!public_url.contains("sig="), "a public project's URL is plain: {public_url}");
    let anonymous = reqwest::Client::new();
    if store == StoreKind::Filesystem {
        // (The test bucket is not publicly readable: on S3 a public URL works through
        // `S3_PUBLIC_URL`, a CDN or a website endpoint in front of it.)
        assert_eq!(anonymous.get(&public_url).send().await.expect("get").status(), 200, "{public_url}");
    }

    // Out of range TTLs are refused, naming the field.
    let project = format!("/projects/{}", tenant.project_id);
    for ttl in [59, 604_801] {
        let why = assert_error(
            app.put_json(&project, Some(&tenant.token), &json!({"settings": settings("private", ttl)})).await,
            400,
            "validation_failed",
        )
        .await;
        assert!(why.starts_with("settings.url_ttl_seconds"), "{why}");
    }
    let made_private =
        app.put_json(&project, Some(&tenant.token), &json!({"settings": settings("private", 120)})).await;
    assert_eq!(made_private.status(), 200);
    let made_private: Value = made_private.json().await.expect("json");
    assert_eq!(made_private["settings"]["visibility"], "private", "{made_private}");

    let signed = thumb_url(&app, &tenant.key, &file_id).await;
    let response = anonymous.get(&signed).send().await.expect("get");
    assert_eq!(response.status(), 200, "{signed}");
    let png = image::load_from_memory(&response.bytes().await.expect("bytes")).expect("the thumbnail");
    assert_eq!((png.width(), png.height()), (64, 48));
    assert_eq!(anonymous.get(tampered(&signed)).send().await.expect("get").status(), 403, "tampered");

    if store == StoreKind::Filesystem {
        // The old, unsigned URL stops working at once, with the contract's error body.
        assert_error(anonymous.get(&public_url).send().await.expect("get"), 403, "forbidden").await;
        let query = signed.split_once('?').map(|(_, q)| q);
        let exp: i64 = query_value(query, "exp").expect("exp").parse().expect("a number");
        let now = chrono::Utc::now().timestamp();
        assert!((now + 100..=now + 130).contains(&exp), "expires after url_ttl_seconds: {exp} vs {now}");
        let response = anonymous.get(&signed).send().await.expect("get");
        let cache = response.headers()["cache-control"].to_str().expect("ascii").to_owned();
        assert!(cache.starts_with("private, max-age="), "never cached publicly: {cache}");
        // Expired (signed with the host's own key, so only the time is wrong), another key's
        // signature, and a signature for another path are all refused.
        let path = signed.trim_start_matches(&app.base).split_once('?').expect("a query").0.to_owned();
        let signer = UrlSigner::new(TEST_JWT_SECRET);
        let expired = format!("{}{path}?{}", app.base, signer.query(&path, now - 1));
        assert_error(anonymous.get(&expired).send().await.expect("get"), 403, "forbidden").await;
        let foreign = UrlSigner::new("someone-else-someone-else-someone-else-0000");
        let forged = format!("{}{path}?{}", app.base, foreign.query(&path, now + 60));
        assert_error(anonymous.get(&forged).send().await.expect("get"), 403, "forbidden").await;
        let original: Value =
            app.get_with_key(&format!("/files/{file_id}"), &tenant.key).await.json().await.expect("json");
        let original_query = original["url"].as_str().expect("url").split_once('?').expect("signed").1.to_owned();
        let elsewhere = format!("{}{path}?{original_query}", app.base);
        assert_error(anonymous.get(&elsewhere).send().await.expect("get"), 403, "forbidden").await;

        // Public again: the plain URL works again.
        let public_again =
            app.put_json(&project, Some(&tenant.token), &json!({"settings": settings("public", 3600)})).await;
        assert_eq!(public_again.status(), 200);
        assert_eq!(anonymous.get(&public_url).send().await.expect("get").status(), 200);
        // A soft-deleted project's blobs are gone for everyone, signed or not (failing closed: a
        // deleted private project's blobs never become readable unsigned).
        let back = app.put_json(&project, Some(&tenant.token), &json!({"settings": settings("private", 120)})).await;
        assert_eq!(back.status(), 200);
        let fresh = thumb_url(&app, &tenant.key, &file_id).await;
        assert_eq!(app.delete_as(&project, Some(&tenant.token)).await.status(), 204);
        assert_error(anonymous.get(&public_url).send().await.expect("get"), 404, "not_found").await;
        assert_error(anonymous.get(&fresh).send().await.expect("get"), 404, "not_found").await;
    } else {
        // The bucket checks its own presigned URLs; unsigned, its objects are not readable.
        assert!(signed.contains("X-Amz-Signature=") && signed.contains("X-Amz-Expires=120"), "{signed}");
        assert_eq!(anonymous.get(&public_url).send().await.expect("get").status(), 403);
    }
}

async fn variants_are_delivered_by_file_and_name(db: DbKind, store: StoreKind) {
    let (app, tenant, file_id) = rendered_upload(db, store).await;
    let blob = thumb_url(&app, &tenant.key, &file_id).await;
    let key = blob.rsplit_once(&tenant.prefix).map(|(_, rest)| format!("{}{rest}", tenant.prefix)).expect("a key");
    // No redirects followed: on S3 the answer is the 302 itself.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let path = format!("/v/{file_id}/thumb");
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.expect("get") }
    };

    let answer = get(app.url(&path)).await;
    if store == StoreKind::Filesystem {
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["cache-control"], "public, max-age=3600");
        let etag = answer.headers()["etag"].to_str().expect("ascii").to_owned();
        let png = image::load_from_memory(&answer.bytes().await.expect("bytes")).expect("the thumbnail");
        assert_eq!((png.width(), png.height()), (64, 48));
        let again = client.get(app.url(&path)).header("if-none-match", &etag).send().await.expect("get");
        assert_eq!(again.status(), 304);
    } else {
        assert_eq!(answer.status(), 302);
        let location = answer.headers()["location"].to_str().expect("ascii");
        assert!(location.ends_with(&key), "to the bucket: {location}");
    }
    assert_error(get(app.url(&format!("/v/{file_id}/nope"))).await, 404, "not_found").await;
    assert_error(get(app.url(&format!("/v/{}/thumb", uuid::Uuid::now_v7()))).await, 404, "not_found").await;

    // Private: unsigned and altered are 403; signed over the path, it answers.
    let project = format!("/projects/{}", tenant.project_id);
    let private = app.put_json(&project, Some(&tenant.token), &json!({"settings": settings("private", 600)})).await;
    assert_eq!(private.status(), 200);
    assert_error(get(app.url(&path)).await, 403, "forbidden").await;
    let now = chrono::Utc::now().timestamp();
    let signer = UrlSigner::new(TEST_JWT_SECRET);
    let signed = app.url(&format!("{path}?{}", signer.query(&path, now + 300)));
    assert_error(get(tampered(&signed)).await, 403, "forbidden").await;
    assert_error(get(app.url(&format!("{path}?{}", signer.query(&path, now - 1)))).await, 403, "forbidden").await;
    let other = format!("/v/{file_id}/other");
    assert_error(get(app.url(&format!("{path}?{}", signer.query(&other, now + 300)))).await, 403, "forbidden").await;
    let answer = get(signed).await;
    if store == StoreKind::Filesystem {
        assert_eq!(answer.status(), 200);
        let cache = answer.headers()["cache-control"].to_str().expect("ascii").to_owned();
        assert!(cache.starts_with("private, max-age="), "{cache}");
    } else {
        assert_eq!(answer.status(), 302);
        let location = answer.headers()["location"].to_str().expect("ascii").to_owned();
        assert!(location.contains("X-Amz-Signature="), "a presigned GET: {location}");
        assert_eq!(reqwest::get(&location).await.expect("get").status(), 200);
    }
}
