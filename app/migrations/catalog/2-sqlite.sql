-- catalog 2: substring search on an index. A trigram index over titles and authors (FTS5,
-- external content: the books table stays the truth).
CREATE VIRTUAL TABLE books_search USING fts5(title, author, content='books', content_rowid='id', tokenize='trigram');
CREATE TRIGGER books_search_insert AFTER INSERT ON books BEGIN INSERT INTO books_search (rowid, title, author) VALUES (new.id, new.title, new.author); END;
CREATE TRIGGER books_search_delete AFTER DELETE ON books BEGIN INSERT INTO books_search (books_search, rowid, title, author) VALUES ('delete', old.id, old.title, old.author); END;
CREATE TRIGGER books_search_update AFTER UPDATE OF title, author ON books BEGIN INSERT INTO books_search (books_search, rowid, title, author) VALUES ('delete', old.id, old.title, old.author); INSERT INTO books_search (rowid, title, author) VALUES (new.id, new.title, new.author); END;
INSERT INTO books_search (books_search) VALUES ('rebuild');
