// Package control is the kill switch (DESIGN §6.3): the operator's signed
// control list, which blocks or yanks extensions everywhere at once, by
// manifest digest, layer digest, content digest (the files themselves,
// whatever name they are republished under: artifact's content digest),
// publisher key, or name and versions.
//
// A list is a small YAML or JSON document (List, Parse), pushed as an OCI
// artifact of type application/vnd.connectsoft.controllist.v1 and signed
// with package signing as cosign signs any manifest, so stock `cosign
// verify --key operator.pub REF` accepts it (Push, Fetch). A Guard is how
// a consumer holds it: fetched, verified with the operator's keys, cached
// (on disk for the CLI, in memory for a long-running process), refreshed,
// refused when expired or when its sequence is lower than one already seen
// (rollback), and failed closed once it could not be refreshed for longer
// than the policy's maxAge. Package policy turns a Guard's answer into the
// decision's control check; control sits between signing and policy.
package control
