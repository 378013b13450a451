-- catalog 3: the catalog and the search read one covering index: a card's columns beside the listing
-- order, so a page is one range scan with no lookup in the clustered index per row.
CREATE INDEX books_cards ON books (status, id, title, author, price_cents, stock, cover, seller_id);
DROP INDEX books_listing ON books;
