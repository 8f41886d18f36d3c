from agent_ui.cli import main

main()
