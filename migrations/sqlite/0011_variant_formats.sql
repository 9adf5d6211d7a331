-- The siblings of a `format: "auto"` variant (AVIF, WebP, and JPEG or PNG, rendered from one
-- decode), as JSON: {"avif": {"key": "...", "size": 123}, "webp": {...}, "jpeg": {...}}. The
-- row's own `storage_key` and `size` are those of the JPEG or PNG, the sibling every client
-- decodes. NULL for a variant of one format.
ALTER TABLE variants ADD COLUMN formats TEXT;
