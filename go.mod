module github.com/umptcp/umptcp

go 1.26.3
