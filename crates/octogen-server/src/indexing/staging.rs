//! A run's staged products, kept in a file on its node until the run publishes.
//!
//! Staging used to be a database table: every product was written there,
//! copied into `products` by the publish, then deleted, each write paid twice
//! by SQLite's WAL; at 1M products that was ~17 GB written and most of the
//! import's time (BENCHMARKS.md §5). A local file costs one sequential write
//! and one read, and the publish writes to the database only what changed. A
//! crash loses the file with the run, which is marked interrupted on restart
//! (its catalog unchanged), and the next start sweeps leftover files away.
//!
//! Next to each product the file keeps its search document, prepared while the
//! product was parsed, so that indexing the run alongside its publish need not
//! decode every product's JSON again (a seventh of the import's CPU at 1M).
//!
//! The format is private to this module: per product, five little-endian u32
//! lengths (uuid, url key, content hash, packed record, encoded search
//! document), then those bytes.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use octogen_store::StagedProduct;
use tokio::sync::mpsc;

/// Products handed to the publish at a time.
pub(super) const READ_BATCH: usize = 2_000;
/// No field of a staged product comes near this; a larger length means the file is damaged.
const MAX_FIELD_BYTES: u32 = 64 * 1024 * 1024;
const BUFFER_BYTES: usize = 1 << 20;
pub(super) const EXTENSION: &str = "staged";
const FIELDS: usize = 5;

/// A staged product and its encoded search document (`octogen_search::ProductDocument`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Staged {
    pub product: StagedProduct,
    pub document: Vec<u8>,
}

/// Appends staged products to a run's file (on the parsing thread).
pub(super) struct StagingWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl StagingWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(StagingWriter { file: BufWriter::with_capacity(BUFFER_BYTES, file), path: path.to_path_buf() })
    }

    pub fn append(&mut self, staged: &Staged) -> io::Result<()> {
        let product = &staged.product;
        let fields: [&[u8]; FIELDS] = [
            product.uuid.as_bytes(),
            product.url_key.as_bytes(),
            product.content_hash.as_bytes(),
            &product.packed,
            &staged.document,
        ];
        for field in fields {
            let len = u32::try_from(field.len()).ok().filter(|len| *len <= MAX_FIELD_BYTES).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("a staged field of {} bytes", field.len()))
            })?;
            self.file.write_all(&len.to_le_bytes())?;
        }
        for field in fields {
            self.file.write_all(field)?;
        }
        Ok(())
    }

    /// Flushes the file; not synced: a crash ends the run anyway.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        self.file.flush()?;
        Ok(self.path)
    }
}

/// Reads a run's file back on a blocking thread, a batch ahead of the publish.
pub(super) struct StagingReader {
    batches: mpsc::Receiver<Message>,
}

enum Message {
    Batch(Vec<Staged>),
    End,
    Failed(String),
}

impl StagingReader {
    pub fn open(path: PathBuf) -> Self {
        let (sender, batches) = mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            let message = match read_batches(&path, &sender) {
                Ok(()) => Message::End,
                Err(error) => Message::Failed(format!("{}: {error}", path.display())),
            };
            let _ = sender.blocking_send(message);
        });
        StagingReader { batches }
    }
}

impl StagingReader {
    /// The next batch in file order; `None` after the last.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Staged>>, String> {
        match self.batches.recv().await {
            Some(Message::Batch(batch)) => Ok(Some(batch)),
            Some(Message::End) => Ok(None),
            Some(Message::Failed(message)) => Err(message),
            None => Err("the staging file's reader stopped before the end".into()),
        }
    }
}

/// Sends every product of the file in batches; stops quietly if the publish gave up.
fn read_batches(path: &Path, sender: &mpsc::Sender<Message>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, File::open(path)?);
    let mut batch = Vec::with_capacity(READ_BATCH);
    while let Some(product) = read_product(&mut reader)? {
        batch.push(product);
        if batch.len() == READ_BATCH && sender.blocking_send(Message::Batch(std::mem::take(&mut batch))).is_err() {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(Message::Batch(batch));
    }
    Ok(())
}

/// The next product, `None` at a clean end of file.
fn read_product(reader: &mut impl Read) -> io::Result<Option<Staged>> {
    let mut header = [0u8; 4 * FIELDS];
    let first = read_to_fill(reader, &mut header)?;
    if first == 0 {
        return Ok(None);
    }
    if first < header.len() {
        return Err(truncated());
    }
    let mut fields: [Vec<u8>; FIELDS] = Default::default();
    for (field, len) in fields.iter_mut().zip(header.chunks_exact(4)) {
        let len = u32::from_le_bytes(len.try_into().expect("chunks of four"));
        if len > MAX_FIELD_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a field claims {len} bytes")));
        }
        field.resize(len as usize, 0);
        reader.read_exact(field).map_err(|_| truncated())?;
    }
    let [uuid, url_key, content_hash, packed, document] = fields;
    let text =
        |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error));
    let product =
        StagedProduct { uuid: text(uuid)?, url_key: text(url_key)?, content_hash: text(content_hash)?, packed };
    Ok(Some(Staged { product, document }))
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_to_fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the file ends in the middle of a product")
}

/// Removes staging files left by runs that died with an earlier life of this node.
pub(super) fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.extension().is_some_and(|extension| extension == EXTENSION) {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove a stale staging file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(i: usize) -> Staged {
        let product = StagedProduct::new(
            "catalog-id",
            format!("https://shop.example/p/{i}"),
            format!("{{\"title\":\"P{i}\"}}").as_bytes(),
        );
        Staged { product, document: vec![i as u8; i % 5] }
    }

    async fn read_all(path: PathBuf) -> Result<Vec<Staged>, String> {
        let mut reader = StagingReader::open(path);
        let mut products = Vec::new();
        while let Some(batch) = reader.next_batch().await? {
            products.extend(batch);
        }
        Ok(products)
    }

    #[tokio::test]
    async fn products_read_back_as_written_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.staged");
        let products: Vec<Staged> = (0..READ_BATCH * 2 + 7).map(product).collect();
        let mut writer = StagingWriter::create(&path).unwrap();
        for product in &products {
            writer.append(product).unwrap();
        }
        let path = writer.finish().unwrap();
        let mut reader = StagingReader::open(path.clone());
        assert_eq!(reader.next_batch().await.unwrap().unwrap().len(), READ_BATCH);
        assert_eq!(read_all(path).await.unwrap(), products);

        let empty = dir.path().join("empty.staged");
        StagingWriter::create(&empty).unwrap().finish().unwrap();
        assert_eq!(read_all(empty).await.unwrap(), []);
    }

    #[tokio::test]
    async fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.staged");
        let mut writer = StagingWriter::create(&path).unwrap();
        writer.append(&product(1)).unwrap();
        writer.append(&product(2)).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in [bytes.len() - 1, bytes.len() / 2 + 3, 5] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let error = read_all(path.clone()).await.unwrap_err();
            assert!(error.contains("run.staged") && error.contains("middle of a product"), "{cut}: {error}");
        }
        std::fs::write(&path, [0xff; 4 * FIELDS]).unwrap();
        assert!(read_all(path.clone()).await.unwrap_err().contains("claims"));
        std::fs::remove_file(&path).unwrap();
        assert!(read_all(path).await.unwrap_err().contains("run.staged"));
    }

    #[test]
    fn sweep_removes_only_staging_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.staged"), b"x").unwrap();
        std::fs::write(dir.path().join("b.upload"), b"x").unwrap();
        sweep(dir.path());
        assert!(!dir.path().join("a.staged").exists());
        assert!(dir.path().join("b.upload").exists());
    }
}
