-- Product images (issue 16). The bytes live in an object store under keys that are
-- content hashes (the same image uploaded twice is stored once); the database
-- holds only which product shows which image, in what order, with what alt text.
CREATE TABLE product_images (
    product_id    BIGINT NOT NULL REFERENCES products (id),
    position      BIGINT NOT NULL,
    image_key     TEXT NOT NULL,
    alt           TEXT NOT NULL,
    width         BIGINT NOT NULL,
    height        BIGINT NOT NULL,
    content_type  TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (product_id, position)
);
CREATE UNIQUE INDEX product_images_once ON product_images (product_id, image_key);

-- Sizes derived from an original by the image job: `card` and `page`.
CREATE TABLE image_variants (
    image_key   TEXT NOT NULL,
    size        TEXT NOT NULL,
    variant_key TEXT NOT NULL,
    width       BIGINT NOT NULL,
    height      BIGINT NOT NULL,
    PRIMARY KEY (image_key, size)
);

-- The main image of a product as sold (its key), part of the snapshot's content.
ALTER TABLE snapshots ADD COLUMN image_key TEXT;
