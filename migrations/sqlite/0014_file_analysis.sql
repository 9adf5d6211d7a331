-- What the standard plugin saw of an image in the render call that made its variants
-- (placeholders, frames, EXIF metadata; GPS only for projects with `keep_gps`), as JSON: see
-- host/src/files/analysis.rs. NULL until the first render, and for plain files.
ALTER TABLE files ADD COLUMN analysis TEXT;
-- The image's focal point, `{"x": 0.3, "y": 0.4}` (fractions of the upright picture), set by
-- PATCH /files/{id}; `gravity: focal` variants are cropped around it. NULL: none.
ALTER TABLE files ADD COLUMN focal_point TEXT;
