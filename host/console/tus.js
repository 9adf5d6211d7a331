// Resumable uploads over the host's TUS 1.0.0 endpoint: create, then PATCH the file in chunks
// (XMLHttpRequest, for upload progress); a chunk cut by the network is resumed from the offset
// the server reports (HEAD), a few times with backoff. A refusal (413, 415, quota) is final.

const CHUNK = 8 << 20;
const RETRIES = 5;

export class UploadError extends Error {}

/** Uploads `file`; resolves with the id of the File it became. */
export async function tusUpload(file, { key, kind = "any", onProgress = () => {} }) {
  const metadata = `filename ${b64(file.name)},kind ${b64(kind)}`;
  const created = await send("POST", "/tus/", {
    "Upload-Length": String(file.size),
    "Upload-Metadata": metadata,
    "X-API-Key": key,
  });
  if (created.status !== 201) throw refusal(created);
  const location = samePath(created.getResponseHeader("Location"));
  let offset = 0;
  let failures = 0;
  for (;;) {
    const chunk = file.slice(offset, offset + CHUNK);
    let answer;
    try {
      answer = await send(
        "PATCH",
        location,
        { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream", "X-API-Key": key },
        chunk,
        (sent) => onProgress(Math.min(offset + sent, file.size), file.size),
      );
    } catch (networkError) {
      answer = null;
    }
    if (answer && answer.status === 204) {
      failures = 0;
      offset = Number(answer.getResponseHeader("Upload-Offset"));
      onProgress(offset, file.size);
      const id = answer.getResponseHeader("Upload-File-Id");
      if (id) return id;
      if (offset >= file.size) throw new UploadError("the upload ended without a file");
      continue;
    }
    if (answer && answer.status >= 400 && answer.status < 500 && answer.status !== 409) throw refusal(answer);
    // Cut, a server error or an offset conflict: ask where the server is, then go on from there.
    failures += 1;
    if (failures > RETRIES) throw new UploadError(answer ? refusal(answer).message : "the network failed");
    await new Promise((r) => setTimeout(r, 500 * 2 ** failures));
    const head = await send("HEAD", location, { "X-API-Key": key }).catch(() => null);
    if (head && head.status === 200) {
      const id = head.getResponseHeader("Upload-File-Id");
      if (id) return id;
      offset = Number(head.getResponseHeader("Upload-Offset"));
    } else if (head && head.status >= 400 && head.status < 500) {
      throw refusal(head);
    }
  }
}

function send(method, url, headers, body = null, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("Tus-Resumable", "1.0.0");
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onSent) xhr.upload.addEventListener("progress", (e) => onSent(e.loaded));
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => reject(new UploadError("the network failed")));
    xhr.addEventListener("abort", () => reject(new UploadError("aborted")));
    xhr.send(body);
  });
}

/** The contract's error message of a refused request. */
function refusal(xhr) {
  try {
    return new UploadError(JSON.parse(xhr.responseText).error.message);
  } catch {
    return new UploadError(`refused: ${xhr.status}`);
  }
}

/** The upload's URL on this origin (the host answers `{PUBLIC_BASE_URL}/tus/{id}`). */
function samePath(location) {
  const url = new URL(location, window.location.href);
  if (!url.pathname.startsWith("/tus/")) throw new UploadError("the server gave an unexpected upload URL");
  return url.pathname;
}

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}
