#!/bin/sh
echo "checking Salesforce credentials"
