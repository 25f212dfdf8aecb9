print("hello from a MicroVM")
