// Package jobxml encodes and decodes the two XML documents of the agent
// protocol: the job document the server hands an agent when it dispatches a
// run, and the status documents the agent sends back.
//
// The documents cross a trust boundary in both directions and outlive any
// one release of the server or the agent, so the package is deliberately
// narrow:
//
//   - Every document carries a version (the <job> and <statuses> roots
//     always, a lone <status> root implicitly 1), and a decoder refuses a
//     version it does not know instead of guessing at it.
//   - Decoding is strict. Unknown or duplicate elements and attributes,
//     missing required ones, values of the wrong shape, inconsistent status
//     fields, DTDs, entity definitions and trailing content are all errors,
//     each naming the element or attribute, the reason and the position, so
//     an operator reading a refused report knows what to fix.
//   - Scripts and output round-trip byte for byte for any text XML 1.0 can
//     hold. The encoder writes them as CDATA, splitting the section around
//     "]]>" and writing every carriage return as the reference &#xD;, because
//     XML parsers turn raw CR and CRLF into LF even inside CDATA. Text XML
//     cannot hold at all (invalid UTF-8, control characters, U+FFFE, U+FFFF)
//     is refused by the encoder with ValidateText's message; the agent runs
//     process output through Sanitize first, since a report must never be
//     lost to one stray byte.
//   - Whatever the encoders produce, the decoders accept, and whatever the
//     decoders return, the encoders can write back. Tests and fuzz targets
//     hold the package to that.
//
// The written schema is docs/job-xml.md, with XML Schemas for other tools in
// docs/schema/.
package jobxml
