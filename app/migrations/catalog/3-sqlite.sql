-- catalog 3: the catalog and the search read one covering index. A card's columns sit in the index beside
-- the listing order, so a page is one range scan with no lookup per row; `search_key` (title and
-- author in lower case, as LIKE folds: ASCII) lets a search check the newest books in that same
-- scan and stop at a full page, which answers a common term without the trigram index.
ALTER TABLE books ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE books SET search_key = lower(title) || char(10) || lower(author);
CREATE TRIGGER books_key_insert AFTER INSERT ON books BEGIN UPDATE books SET search_key = lower(new.title) || char(10) || lower(new.author) WHERE id = new.id; END;
CREATE TRIGGER books_key_update AFTER UPDATE OF title, author ON books BEGIN UPDATE books SET search_key = lower(new.title) || char(10) || lower(new.author) WHERE id = new.id; END;
CREATE INDEX books_cards ON books (status, id, search_key, title, author, price_cents, stock, cover, seller_id);
DROP INDEX books_listing;
-- Many small inserts leave the trigram index in many segments; one merge now (FTS5 keeps merging).
INSERT INTO books_search (books_search) VALUES ('optimize');
