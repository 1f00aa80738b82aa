"""The accounts use cases, each inside the caller's transaction: ``accounts`` opens an
account and moves it through its lifecycle (load, decide, store, stage the events);
``personal`` seals and opens the personal data; ``imports`` onboards a CSV file in batches."""
