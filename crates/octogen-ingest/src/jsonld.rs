use std::io::BufRead;
use crate::pipeline::RecordSink;
use crate::reader::TrackedReader;
use crate::{FeedError, FeedOptions};
pub fn parse<R: BufRead>(_reader: &mut TrackedReader<R>, _options: &FeedOptions, _sink: &mut impl RecordSink) -> Result<(), FeedError> { todo!() }
