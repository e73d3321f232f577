module aimass/loadgen

go 1.22
