-- Categories (a flat list with URL names) and which products are in which; a
-- product may be in several. Sellers choose among these; the list is data.
CREATE TABLE categories (
    id   BIGINT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
INSERT INTO categories (id, slug, name) VALUES
    (1, 'kitchen', 'Kitchen'),
    (2, 'home', 'Home & living'),
    (3, 'outdoors', 'Outdoors'),
    (4, 'clothing', 'Clothing'),
    (5, 'books', 'Books & paper'),
    (6, 'tools', 'Tools'),
    (7, 'toys', 'Toys & games'),
    (8, 'electronics', 'Electronics');

CREATE TABLE product_categories (
    product_id  BIGINT NOT NULL REFERENCES products (id),
    category_id BIGINT NOT NULL REFERENCES categories (id),
    PRIMARY KEY (product_id, category_id)
);
CREATE INDEX product_categories_by_category ON product_categories (category_id, product_id);

-- The price orders page through (price, id).
CREATE INDEX products_by_price ON products (price_cents, id);
