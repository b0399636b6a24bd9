// Empty: it lets runtime.go declare the functions it takes from the runtime without a body.
