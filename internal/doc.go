// Package internal's subpackages are test rigs only, used by the tests and
// benchmarks and never by the binary: network namespaces with test hosts
// (netns), traffic (trafficgen), packets (pcapgen), a test PostgreSQL
// (pgtest), real storage servers and the BlobStore conformance suite
// (blobtest), and the skip-or-fail rule for missing prerequisites (testenv).
// Production code lives in the stage packages; the state store's
// conformance suite is storetest/, beside them.
package internal
