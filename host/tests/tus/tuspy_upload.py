"""Uploads a file to a tus server with tuspy (`tusclient` from PyPI), a client nobody on the team
wrote, as an application would: chunk by chunk, its upload URL kept in a FileStorage URL store so
that a run killed half-way resumes where the server says it stopped.

    python tuspy_upload.py ENDPOINT FILE URL_STORE CHUNK_BYTES     (X-API-Key: $MBK_TUS_API_KEY)

Prints one line per step, flushed, for the test driving it: `url URL OFFSET` once the upload is
known (OFFSET is where it resumes), `chunk OFFSET` after each chunk, `done FILE_ID` at the end.
"""

import os
import sys

from tusclient import client
from tusclient.storage import filestorage


def main() -> None:
    endpoint, path, url_store, chunk_bytes = sys.argv[1:5]
    tus = client.TusClient(endpoint, headers={"X-API-Key": os.environ["MBK_TUS_API_KEY"]})
    uploader = tus.uploader(
        path,
        chunk_size=int(chunk_bytes),
        store_url=True,
        url_storage=filestorage.FileStorage(url_store),
        metadata={"filename": os.path.basename(path), "kind": "file"},
    )
    if not uploader.url:
        uploader.set_url(uploader.create_url())
        uploader.offset = 0
    print("url", uploader.url, uploader.offset, flush=True)
    size = uploader.get_file_size()
    while uploader.offset < size:
        uploader.upload_chunk()
        print("chunk", uploader.offset, flush=True)
    last = getattr(uploader, "request", None)  # none when a killed run had sent every chunk
    print("done", last.response_headers.get("upload-file-id") if last else "-", flush=True)


if __name__ == "__main__":
    main()
