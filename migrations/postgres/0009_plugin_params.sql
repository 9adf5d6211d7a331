-- The params a plugin declares in its info() (world mbk:plugin@0.2.0), as JSON
-- ([{"name","type","default","min","max","values","description"}]): project settings are checked
-- against them when saved. NULL for a 0.1.0 component, which declares none (its params go
-- unchecked), and for every plugin registered before this migration (all of them 0.1.0).
ALTER TABLE plugins ADD COLUMN params TEXT;
