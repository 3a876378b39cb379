from mlsandbox.cli.main import main

main()
