// Command demohelper does the few things scripts/demo.sh needs that a
// fresh machine with only Go may have no tool for: a free port for the
// embedded registry (its address is written into the stage policies before
// it starts), a field of a JSON document (jq may be absent), the months to date by
// (GNU date's -d is not everywhere), and Factory's
// late install report of last month through index/client, so that a month
// has ended with usage in it and its statement can be closed now.
package main
