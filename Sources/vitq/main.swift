print("vitq")
