use std::io::BufRead;
use crate::pipeline::RecordSink;
use crate::reader::TrackedReader;
use crate::FeedError;
pub fn parse_xml<R: BufRead>(_reader: &mut TrackedReader<R>, _sink: &mut impl RecordSink) -> Result<(), FeedError> { todo!() }
pub fn parse_tsv<R: BufRead>(_reader: &mut TrackedReader<R>, _sink: &mut impl RecordSink) -> Result<(), FeedError> { todo!() }
