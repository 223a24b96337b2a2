// Package xmlscan tokenizes an XML document held in a byte slice, fast, and
// accepts and refuses exactly what encoding/xml's Decoder (Strict, no
// Entity map, no CharsetReader) does — with the same error messages, lines
// and columns — so that the decoders of package xmlrpc and jobxml could move
// off encoding/xml without changing what they accept or say.
//
// That is its one job. It knows elements and attributes (quoted with ' or
// "), character data, the five predefined entities and numeric character
// references, CDATA sections, comments, processing instructions (with
// encoding/xml's checks of the XML declaration's version and encoding) and
// directives, which it returns for the caller to refuse. It checks what
// encoding/xml checks: names (XML 1.0 fourth edition, Appendix B), characters
// outside the XML Char range and invalid UTF-8 in text and attribute values,
// '<' in attribute values, "]]>" in text, "--" in comments, and — with
// Scanner.Nesting — matching end tags and unclosed elements, as
// Decoder.Token does. Like encoding/xml, it does not refuse duplicate
// attributes, text or a second element after the root, or namespace prefixes
// that were never declared: those are the callers' rules, and the callers
// apply them. Line ends are normalised as XML 1.0 §2.11 says (CR LF and a lone
// CR become LF) in text, CDATA and attribute values; a CR written as &#xD;
// is kept. Attribute values are not otherwise normalised, as in encoding/xml.
//
// Differences from encoding/xml are in cost only: the scanner works on a
// []byte with indexes, has no interface per token, and returns sub-slices of
// the input when text needs no unescaping. Token data stays valid only until
// the next call of Next, as with encoding/xml's Decoder.
//
// FuzzScanMatchesEncodingXML checks the equivalence token by token, error by
// error, against encoding/xml itself.
package xmlscan
